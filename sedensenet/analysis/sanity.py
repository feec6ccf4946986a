"""Sanity and faithfulness checks for attribution maps.

- Model randomisation (Adebayo et al. 2018): re-initialise layers from the top down and measure how similar
  the maps stay (Spearman rank correlation). Maps that do not change are not explaining the model.
- Deletion / insertion (Petsiuk et al. 2018): remove (or add) pixels in order of attribution and follow the
  target probability; a faithful map makes it fall fast (low deletion AUC) and rise fast (high insertion AUC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from sedensenet.analysis.attribution import attribute, black_baseline, private_replica


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (average ranks for ties)."""
    ra, rb = _rank(a.ravel()), _rank(b.ravel())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom else 0.0


def _rank(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.arange(len(v), dtype=np.float64)
    uniq, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    if len(uniq) < len(v):  # average ranks of ties
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def randomisation_order(model: nn.Module) -> list[str]:
    """Top-down cascade: classifier, final norm, then each top-level feature stage from the output back."""
    names = [n for n, m in model.named_children() if n != "features" and any(True for _ in m.parameters())]
    features = getattr(model, "features", None)
    if features is not None:
        names += [f"features.{n}" for n, m in reversed(list(features.named_children()))
                  if any(True for _ in m.parameters())]
    return names


def _reinit(module: nn.Module, generator: torch.Generator) -> None:
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            with torch.no_grad():
                if name == "weight" and p.dim() > 1:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1 + (1.0 if name == "weight" else 0.0))


@dataclass
class RandomisationStep:
    """Similarity of the map after randomising everything down to ``layer``."""

    layer: str
    spearman: float


def randomisation_test(model: nn.Module, x: Tensor, method: str, target: int, *, mean=(0.485, 0.456, 0.406),
                       std=(0.229, 0.224, 0.225), seed: int = 0, steps: int | None = None) -> list[RandomisationStep]:
    """Cascading model-randomisation test for one image ``x`` (1×C×H×W); Spearman of |map| vs the original."""
    original = np.abs(attribute(model, x, method, target, mean=mean, std=std)[0].map)
    twin = private_replica(model)
    g = torch.Generator().manual_seed(seed)
    modules = dict(twin.named_modules())
    out = []
    for name in randomisation_order(twin)[:steps]:
        _reinit(modules[name], g)
        randomised = np.abs(attribute(twin, x, method, target, mean=mean, std=std)[0].map)
        out.append(RandomisationStep(name, spearman(original, randomised)))
    return out


@torch.inference_mode()
def deletion_insertion(model: nn.Module, x: Tensor, attribution: np.ndarray, target: int, *,
                       mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), steps: int = 20) -> dict[str, object]:
    """Deletion and insertion curves (target probability vs fraction of pixels) and their areas."""
    device = next(model.parameters()).device
    x = x.to(device)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    base = black_baseline(x, mean, std)
    order = np.argsort(-attribution.ravel(), kind="stable")
    h, w = x.shape[-2:]
    fractions = np.linspace(0, 1, steps + 1)
    masks = torch.zeros(steps + 1, 1, h * w, device=device)
    for i, f in enumerate(fractions):
        masks[i, 0, torch.as_tensor(order[: round(f * h * w)], device=device)] = 1
    masks = masks.view(steps + 1, 1, h, w)
    deleted = x * (1 - masks) + base * masks
    inserted = base * (1 - masks) + x * masks
    del_p = torch.softmax(model(deleted), 1)[:, target].cpu().numpy()
    ins_p = torch.softmax(model(inserted), 1)[:, target].cpu().numpy()
    return {"fractions": fractions.tolist(), "deletion": del_p.tolist(), "insertion": ins_p.tolist(),
            "deletion_auc": float(np.trapezoid(del_p, fractions)),
            "insertion_auc": float(np.trapezoid(ins_p, fractions))}
