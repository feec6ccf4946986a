"""SE vs baseline: agreement between two models' predictions and attribution maps on the same image."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sedensenet.analysis.sanity import spearman


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen–Shannon divergence (bits, in [0, 1]) between two probability vectors."""
    p, q = p.double().clamp_min(1e-12), q.double().clamp_min(1e-12)
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def _kl(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * (a / b).log2()).sum())


def top_fraction_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """IoU of the top-``fraction`` most important pixels of two maps."""
    k = max(1, round(fraction * a.size))
    ta = set(np.argsort(-a.ravel(), kind="stable")[:k].tolist())
    tb = set(np.argsort(-b.ravel(), kind="stable")[:k].tolist())
    return len(ta & tb) / len(ta | tb)


def prediction_agreement(p_se: torch.Tensor, p_base: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Top-1 agreement, JS divergence and total variation between two probability vectors."""
    a, b = int(p_se.argmax()), int(p_base.argmax())
    return {"top1_se": classes[a], "top1_baseline": classes[b], "top1_agree": a == b,
            "js_divergence": js_divergence(p_se, p_base),
            "total_variation": float(0.5 * (p_se.double() - p_base.double()).abs().sum())}


def map_agreement(map_se: np.ndarray, map_base: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation of |maps| and IoU of their top-10 % regions."""
    a, b = np.abs(map_se), np.abs(map_base)
    return {"spearman": spearman(a, b), "top10_iou": top_fraction_iou(a, b)}
