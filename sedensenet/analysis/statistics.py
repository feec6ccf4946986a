"""Class-wise excitation statistics (the SENet paper's §7 "role of excitation" analysis)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sedensenet.analysis.capture import capture_excitations, find_se_modules
from sedensenet.errors import ConfigError


@dataclass
class LayerStats:
    """Per-class excitation statistics of one SE layer: ``mean``/``std`` are K×C (classes × channels)."""

    name: str
    channels: int
    mean: np.ndarray
    std: np.ndarray
    overall_mean: np.ndarray

    @property
    def specificity(self) -> float:
        """Between-class spread: std over classes of the class-mean excitation, averaged over channels."""
        return float(self.mean.std(axis=0).mean())


@dataclass
class ExcitationStats:
    """Statistics for every SE layer (forward order) over a labelled dataset."""

    classes: list[str]
    counts: np.ndarray
    layers: list[LayerStats]

    def specificity_by_depth(self) -> list[tuple[str, float]]:
        return [(layer.name, layer.specificity) for layer in self.layers]

    def as_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "counts": self.counts.tolist(),
                "layers": [{"name": layer.name, "channels": layer.channels, "specificity": layer.specificity,
                            "mean": layer.mean.tolist(), "std": layer.std.tolist()} for layer in self.layers]}


def excitation_stats(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], classes: Sequence[str], *,
                     progress: bool = True, total: int | None = None) -> ExcitationStats:
    """Accumulate class-wise mean and std of every SE layer's excitation over ``batches`` of (images, labels).

    One capture forward per batch; sums are kept in float64 so the result equals a direct per-class mean.
    """
    modules = find_se_modules(model)
    if not modules:
        raise ConfigError("the model has no SE layers (baseline?); class-wise excitation needs an SE model")
    k = len(classes)
    counts = np.zeros(k, dtype=np.int64)
    sums: list[torch.Tensor] = []
    sq: list[torch.Tensor] = []
    names: list[str] = []
    for x, y in tqdm(batches, desc="excitation statistics", disable=not progress, total=total, unit="batch"):
        cap = capture_excitations(model, x, se_modules=modules)
        onehot = torch.nn.functional.one_hot(y.long().cpu(), k).double()  # B×K
        if not sums:
            names = [r.name for r in cap.records]
            sums = [torch.zeros(k, r.channels, dtype=torch.float64) for r in cap.records]
            sq = [torch.zeros(k, r.channels, dtype=torch.float64) for r in cap.records]
        for i, r in enumerate(cap.records):
            e = r.excitation.double()
            sums[i] += onehot.T @ e
            sq[i] += onehot.T @ (e * e)
        counts += onehot.sum(0).long().numpy()
    if not sums:
        raise ConfigError("the dataset is empty")
    n = np.maximum(counts, 1)[:, None]
    layers = []
    for name, s, q in zip(names, sums, sq, strict=True):
        mean = s.numpy() / n
        var = np.maximum(q.numpy() / n - mean**2, 0)
        overall = s.sum(0).numpy() / max(int(counts.sum()), 1)
        layers.append(LayerStats(name, s.shape[1], mean, np.sqrt(var), overall))
    return ExcitationStats(list(classes), counts, layers)
