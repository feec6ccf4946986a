"""Class-wise excitation statistics (the SENet paper's §7 "role of excitation" analysis).

The state is running sums: per SE layer, per class, the sum and the sum of squares of the excitation (float64),
plus per-class image counts. Memory is independent of the dataset size, partial sums from several processes or
shards add up exactly (:meth:`ExcitationSums.merge`, ``all_reduce``), and the state can be saved and resumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sedensenet.analysis.capture import SERecord, capture_excitations, find_se_modules
from sedensenet.errors import ConfigError


@dataclass
class LayerStats:
    """Per-class excitation statistics of one SE layer: ``mean``/``std`` are K×C (classes × channels)."""

    name: str
    channels: int
    mean: np.ndarray
    std: np.ndarray
    overall_mean: np.ndarray
    present: np.ndarray | None = None

    @property
    def specificity(self) -> float:
        """Between-class spread: std over classes of the class-mean excitation, averaged over channels.

        Only classes with at least one image (``present``) count: an absent class has no mean."""
        rows = self.mean if self.present is None else self.mean[self.present]
        return float(rows.std(axis=0).mean()) if rows.shape[0] else 0.0


@dataclass
class ExcitationStats:
    """Statistics for every SE layer (forward order) over a labelled dataset.

    ``description`` says what data they were computed on; ``skipped`` counts unreadable images left out.
    """

    classes: list[str]
    counts: np.ndarray
    layers: list[LayerStats]
    description: str = ""
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def specificity_by_depth(self) -> list[tuple[str, float]]:
        return [(layer.name, layer.specificity) for layer in self.layers]

    def as_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "counts": self.counts.tolist(),
                "layers": [{"name": layer.name, "channels": layer.channels, "specificity": layer.specificity,
                            "mean": layer.mean.tolist(), "std": layer.std.tolist()} for layer in self.layers]}


def layer_stats(name: str, mean: np.ndarray, std: np.ndarray, counts: np.ndarray) -> LayerStats:
    """A :class:`LayerStats` from K×C means/stds and per-class counts (which classes are present, overall mean)."""
    overall = (counts[:, None] * mean).sum(0) / max(int(counts.sum()), 1)
    return LayerStats(name, mean.shape[1], mean, std, overall, counts > 0)


class ExcitationSums:
    """Running per-class sums, sums of squares (float64) and counts of every SE layer's excitation."""

    def __init__(self, classes: Sequence[str], names: Sequence[str] = (), channels: Sequence[int] = ()) -> None:
        self.classes = list(classes)
        k = len(self.classes)
        self.counts = np.zeros(k, dtype=np.int64)
        self.names = list(names)
        self.sums = [np.zeros((k, c)) for c in channels]
        self.squares = [np.zeros((k, c)) for c in channels]
        self.skipped = 0

    @property
    def images(self) -> int:
        return int(self.counts.sum())

    def _init_layers(self, records: Sequence[SERecord]) -> None:
        k = len(self.classes)
        self.names = [r.name for r in records]
        self.sums = [np.zeros((k, r.channels)) for r in records]
        self.squares = [np.zeros((k, r.channels)) for r in records]

    def update(self, records: Sequence[SERecord], labels: Tensor) -> None:
        """Add one batch: ``records`` from a capture, ``labels`` (B,) class indices."""
        if not self.sums:
            self._init_layers(records)
        if [r.name for r in records] != self.names:
            raise ValueError("SE layers differ between batches; statistics need one model throughout")
        y = labels.long().cpu()
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
            raise ValueError(f"labels must be class indices 0…{len(self.classes) - 1}")
        onehot = torch.nn.functional.one_hot(y, len(self.classes)).double()  # B×K
        for i, r in enumerate(records):
            e = r.excitation.double()
            self.sums[i] += (onehot.T @ e).numpy()
            self.squares[i] += (onehot.T @ (e * e)).numpy()
        self.counts += onehot.sum(0).long().numpy()

    def merge(self, other: ExcitationSums) -> ExcitationSums:
        """Add another shard's sums (same classes and layers) into this one; returns ``self``."""
        if other.classes != self.classes:
            raise ValueError("cannot merge statistics over different class lists")
        if not other.sums:
            self.skipped += other.skipped
            return self
        if not self.sums:
            self.names = list(other.names)
            self.sums = [np.zeros_like(s) for s in other.sums]
            self.squares = [np.zeros_like(s) for s in other.squares]
        if other.names != self.names:
            raise ValueError("cannot merge statistics of different SE layers")
        for i in range(len(self.sums)):
            self.sums[i] += other.sums[i]
            self.squares[i] += other.squares[i]
        self.counts += other.counts
        self.skipped += other.skipped
        return self

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (no pickled objects): resumable partial sums."""
        out: dict[str, np.ndarray] = {"classes": np.array(self.classes, dtype=str),
                                      "names": np.array(self.names, dtype=str),
                                      "counts": self.counts, "skipped": np.array(self.skipped)}
        for i, (s, q) in enumerate(zip(self.sums, self.squares, strict=True)):
            out[f"sum_{i}"], out[f"sq_{i}"] = s, q
        return out

    @classmethod
    def from_state(cls, state: Any) -> ExcitationSums:
        """Rebuild from :meth:`state` arrays (e.g. an ``np.load``-ed ``.npz``)."""
        sums = cls([str(c) for c in state["classes"]])
        sums.names = [str(n) for n in state["names"]]
        sums.counts = np.asarray(state["counts"], dtype=np.int64)
        sums.skipped = int(state["skipped"])
        sums.sums = [np.asarray(state[f"sum_{i}"], dtype=np.float64) for i in range(len(sums.names))]
        sums.squares = [np.asarray(state[f"sq_{i}"], dtype=np.float64) for i in range(len(sums.names))]
        return sums

    def result(self, description: str = "") -> ExcitationStats:
        """Per-class mean and (population) std of every layer's excitation."""
        if not self.sums or self.images == 0:
            raise ValueError("the dataset is empty: no image was analysed")
        n = np.maximum(self.counts, 1)[:, None]
        layers = []
        for name, s, q in zip(self.names, self.sums, self.squares, strict=True):
            mean = s / n
            std = np.sqrt(np.maximum(q / n - mean**2, 0))
            layers.append(layer_stats(name, mean, std, self.counts))
        return ExcitationStats(list(self.classes), self.counts.copy(), layers, description, self.skipped)


def excitation_stats(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], classes: Sequence[str], *,
                     progress: bool = True, total: int | None = None, precision: str = "auto") -> ExcitationStats:
    """Accumulate class-wise mean and std of every SE layer's excitation over ``batches`` of (images, labels).

    One capture forward per batch; sums are kept in float64 so the result equals a direct per-class mean.
    """
    modules = find_se_modules(model)
    if not modules:
        raise ConfigError("the model has no SE layers (baseline?); class-wise excitation needs an SE model")
    sums = ExcitationSums(classes)
    for x, y in tqdm(batches, desc="excitation statistics", disable=not progress, total=total, unit="batch"):
        cap = capture_excitations(model, x, se_modules=modules, precision=precision)
        sums.update(cap.records, y)
    return sums.result()
