"""Accuracy, per-class accuracy and confusion matrix of a checkpoint on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from sedensenet.data.images import (
    DemoShapes,
    ImageFolderDataset,
    ImageListDataset,
    checkpoint_transform,
)
from sedensenet.data.splits import read_split_file, select
from sedensenet.errors import ConfigError
from sedensenet.models.checkpoint import LoadedModel, load_checkpoint


@torch.inference_mode()
def confusion_matrix(model: nn.Module, loader: DataLoader, device: torch.device, num_classes: int,
                     progress: bool = True) -> torch.Tensor:
    """``num_classes``×``num_classes`` counts, rows = true class, columns = predicted class."""
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for x, y in tqdm(loader, desc="evaluate", leave=False, disable=not progress, unit="batch"):
        pred = model(x.to(device)).argmax(1).cpu()
        cm += torch.bincount(y * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes)
    return cm


def report_from_confusion(cm: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall) and the matrix as plain data."""
    totals = cm.sum(1)
    per_class = {c: (float(cm[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}
    return {"n": int(cm.sum()), "accuracy": float(cm.diag().sum() / cm.sum().clamp(min=1)),
            "per_class_accuracy": per_class, "classes": classes, "confusion_matrix": cm.tolist()}


def split_dataset(loaded: LoadedModel, root: str | Path, split_file: str | Path, split: str,
                  transform: Any) -> Dataset:
    """The ``split`` rows of ``split_file`` under ``root``, labelled with the model's class indices."""
    rows = select(read_split_file(split_file, root), split)  # its SplitFileError is already a user-facing error
    unknown = sorted({r.cls for r in rows} - set(loaded.classes))
    if unknown:
        raise ConfigError(f"the split file's classes {unknown} are not among the model's classes {loaded.classes}")
    index = {c: i for i, c in enumerate(loaded.classes)}
    return ImageListDataset([(r.path, index[r.cls]) for r in rows], transform)


def dataset_for(loaded: LoadedModel, data: str, *, demo_n: int = 800, demo_seed: int = 12345,
                data_dir: str = "data", split_file: str | Path | None = None, split: str = "test",
                resize: str | None = None) -> Dataset:
    """The evaluation dataset ``data`` ('demo', 'cifar10', 'cifar100' or a folder, optionally one split of a
    split file) with the model's transform (``resize`` overrides its crop/letterbox choice)."""
    meta = loaded.meta
    tf = checkpoint_transform(meta, resize=resize)
    if data == "demo":
        if loaded.classes != list(DemoShapes.classes):
            raise ConfigError(f"the model's classes {loaded.classes} are not the demo classes {DemoShapes.classes}")
        return DemoShapes(demo_n, seed=demo_seed, transform=tf)
    if data in ("cifar10", "cifar100"):
        from sedensenet.data.datasets import cifar

        return cifar(data, Path(data_dir), loaded.input_size, augment=False).val
    if not Path(data).is_dir():
        raise ConfigError(f"DATA {data!r} is neither 'demo', 'cifar10', 'cifar100' nor an existing folder")
    if split_file is not None:
        return split_dataset(loaded, data, split_file, split, tf)
    return ImageFolderDataset(data, tf, classes=loaded.classes)  # its ImageError is already a user-facing error


def evaluate_checkpoint(checkpoint: str | Path, data: str, *, demo_n: int = 800, demo_seed: int = 12345,
                        data_dir: str = "data", batch_size: int = 128, device: str = "auto",
                        progress: bool = True, split_file: str | Path | None = None, split: str = "test",
                        resize: str | None = None) -> dict[str, Any]:
    """Load ``checkpoint`` and evaluate it on ``data``; returns a JSON-ready report."""
    loaded = load_checkpoint(checkpoint, device=device)
    ds = dataset_for(loaded, data, demo_n=demo_n, demo_seed=demo_seed, data_dir=data_dir, split_file=split_file,
                     split=split, resize=resize)
    loader = DataLoader(ds, batch_size=batch_size)
    cm = confusion_matrix(loaded.model, loader, loaded.device, len(loaded.classes), progress=progress)
    report = report_from_confusion(cm, loaded.classes)
    report.update(checkpoint=str(checkpoint), data=data, se=loaded.config.se,
                  resize=resize or loaded.meta.resize)
    if split_file is not None:
        report.update(split_file=str(split_file), split=split)
    return report


def format_report(report: dict[str, Any]) -> str:
    """Human-readable evaluation report."""
    where = f"{report['data']} ({report['split']} split)" if report.get("split_file") else report["data"]
    lines = [f"{report['checkpoint']} (se={report['se']}) on {where}: "
             f"accuracy {report['accuracy']:.4f} over {report['n']} images", "per-class accuracy:"]
    for name, acc in report["per_class_accuracy"].items():
        lines.append(f"  {name:<20} {'n/a' if acc is None else f'{acc:.4f}'}")
    classes = report["classes"]
    width = max(6, *(len(c) for c in classes))
    lines.append("confusion matrix (rows = true, columns = predicted):")
    lines.append(" " * (width + 2) + " ".join(f"{c[:width]:>{width}}" for c in classes))
    for name, row in zip(classes, report["confusion_matrix"], strict=True):
        lines.append(f"  {name:<{width}}" + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
