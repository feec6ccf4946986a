"""A checkpoint's training history as a reader should see it: every trained epoch and which one is the best.

Files written before full histories were kept stop at their best epoch; for those the history of the same run is
taken from ``<name>.last.pt`` beside the file when it is there, and otherwise the gap is said plainly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sedensenet.models.metadata import CheckpointMeta


@dataclass(frozen=True)
class RunHistory:
    """Per-epoch rows, the best epoch (whose weights the file holds) and how many epochs the run planned."""

    epochs: list[dict[str, Any]]
    best_epoch: int | None
    planned_epochs: int | None
    source: str = "checkpoint"

    @property
    def complete(self) -> bool:
        return self.planned_epochs is None or len(self.epochs) >= self.planned_epochs

    def note(self) -> str | None:
        """One sentence when the stored history is shorter than the run, else None."""
        if self.complete:
            return None
        return (f"this file stores epochs 1–{len(self.epochs)} of the {self.planned_epochs} trained: it was saved "
                "before checkpoints kept the full history, and stops at its best epoch")


def best_epoch_of(history: Sequence[Mapping[str, Any]]) -> int | None:
    """The first epoch with the highest validation accuracy (the one training keeps), or None."""
    scored = [(float(h["val_acc"]), -i) for i, h in enumerate(history) if "val_acc" in h]
    if not scored:
        return None
    i = -max(scored)[1]  # ties: the earliest epoch, as training only replaces the best on improvement
    return int(history[i].get("epoch", i + 1))


def _last_history(path: Path) -> list[dict[str, Any]] | None:
    import torch

    last = path.with_name(path.stem + ".last" + path.suffix)
    if not last.is_file():
        return None
    try:
        obj = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        history = obj["meta"]["history"]
    except Exception:  # an unreadable or foreign side file: fall back to what the checkpoint says
        return None
    return list(history) if isinstance(history, list) else None


def run_history(meta: Mapping[str, Any] | CheckpointMeta, path: str | os.PathLike[str] | None = None
                ) -> RunHistory | None:
    """The history of the checkpoint with metadata ``meta`` (a loaded checkpoint's :class:`CheckpointMeta` or its
    plain dict; loaded from ``path``, if a file); None if it has none."""
    if not isinstance(meta, Mapping):
        meta = meta.as_dict()
    stored = list(meta.get("history") or [])
    if not stored:
        return None
    args = meta.get("train_args") or {}
    planned = args.get("epochs") if isinstance(args.get("epochs"), int) else None
    best = meta.get("best_epoch") if isinstance(meta.get("best_epoch"), int) else best_epoch_of(stored)
    result = RunHistory(stored, best, planned)
    if result.complete or path is None or not Path(path).is_file():
        return result
    longer = _last_history(Path(path))
    if longer and len(longer) > len(stored) and longer[: len(stored)] == stored:  # the same run, continued
        return RunHistory(longer, best, planned, source=f"{Path(path).stem}.last{Path(path).suffix}")
    return result
