"""Labelled image sets for analysis over a whole dataset (``sedensenet stats``): demo shapes, an image folder, or
the rows of a split file — with the checkpoint's eval transform, and unreadable images skipped, not fatal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from sedensenet.data.images import DemoShapes, ImageError, find_image_files, load_image
from sedensenet.data.splits import SPLITS, read_split_file, select
from sedensenet.errors import SedensenetError


class LabelledDataError(SedensenetError, ValueError):
    """The data for an analysis cannot be used with this model; the message says what to change."""


class LabelledFiles(Dataset):
    """``(path, class index)`` pairs → ``(tensor, label, error)``; an unreadable image gives label −1 and the
    reason instead of stopping a run over tens of thousands of files."""

    def __init__(self, items: Sequence[tuple[Path, int]], transform: Callable[[Any], torch.Tensor],
                 size: int) -> None:
        self.items, self.transform, self.size = list(items), transform, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        path, label = self.items[index]
        try:
            return self.transform(load_image(path)), label, ""
        except (ImageError, OSError) as exc:
            return torch.zeros(3, self.size, self.size), -1, f"{path}: {exc}"


class LabelledDemo(Dataset):
    """The generated demo shapes with the same ``(tensor, label, error)`` items as :class:`LabelledFiles`."""

    def __init__(self, n: int, seed: int, transform: Callable[[Any], torch.Tensor]) -> None:
        self.shapes = DemoShapes(n, seed=seed, size=64, transform=transform)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        x, y = self.shapes[index]
        return x, y, ""


@dataclass
class LabelledData:
    """A labelled dataset for one model's classes, and a description of what it is (kept with the results)."""

    dataset: Dataset
    description: str


def _class_indices(labels: Sequence[str], classes: Sequence[str], where: str) -> list[int]:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        shown = ", ".join(list(classes)[:10]) + (" …" if len(classes) > 10 else "")
        raise LabelledDataError(f"{where} has classes {unknown[:10]} that the model does not know ({shown}); "
                                "name the class folders / 'class' values after the model's classes")
    return [index[label] for label in labels]


def labelled_data(data: str, classes: Sequence[str], transform: Callable[[Any], torch.Tensor], size: int, *,
                  split_file: str | None = None, split: str | None = None, demo_n: int = 800,
                  demo_seed: int = 12345) -> LabelledData:
    """``data`` = ``demo`` (generated shapes), or an image folder ``root/<class>/…`` (all images, or the rows
    of ``split_file`` whose split is ``split``)."""
    if data == "demo":
        if split_file:
            raise LabelledDataError("--split-file needs an image folder as DATA, not 'demo'")
        if list(classes) != list(DemoShapes.classes):
            raise LabelledDataError("this model was not trained on the demo shapes (its classes differ); give an "
                                    "image folder of its classes as DATA")
        if demo_n < 1:
            raise LabelledDataError(f"--demo-n must be ≥ 1, got {demo_n}")
        return LabelledData(LabelledDemo(demo_n, demo_seed, transform),
                            f"demo shapes ({demo_n} generated images, seed {demo_seed})")
    root = Path(data)
    if not root.is_dir():
        raise LabelledDataError(f"DATA {data!r} is neither 'demo' nor an existing image folder")
    if split_file:
        if split is not None and split not in SPLITS:
            raise LabelledDataError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
        rows = read_split_file(split_file, root)
        if split is not None:
            rows = select(rows, split)
        labels = _class_indices([r.cls for r in rows], classes, Path(split_file).name)
        items = [(r.path, y) for r, y in zip(rows, labels, strict=True)]
        which = f"split {split}" if split else "all splits"
        desc = f"{root.name}: {which} of {Path(split_file).name} ({len(items)} images)"
    else:
        if split:
            raise LabelledDataError("--split needs --split-file")
        folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not folders:
            raise LabelledDataError(f"{root} has no class sub-folders; expected {root}/<class>/<image>.jpg")
        labels = _class_indices([d.name for d in folders], classes, str(root))
        items = [(p, y) for d, y in zip(folders, labels, strict=True) for p in find_image_files(d)]
        if not items:
            raise LabelledDataError(f"no images under {root}/<class>/")
        desc = f"{root.name}: image folder ({len(items)} images)"
    return LabelledData(LabelledFiles(items, transform, size), desc)
