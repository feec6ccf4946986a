"""Training/validation datasets for ``sedensenet train``: the offline demo shapes, image folders, CIFAR."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Subset
from torchvision import transforms as T

from sedensenet.data.images import DemoShapes, ImageError, ImageFolderDataset, eval_transform, train_transform
from sedensenet.data.preload import PreloadedImages, shrink
from sedensenet.data.splits import SplitFileError, read_split_file, select
from sedensenet.errors import SedensenetError
from sedensenet.models.checkpoint import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD

CIFAR_HOST = ("www.cs.toronto.edu", 443)


class DataConfig(Protocol):
    data: str
    data_dir: str
    val_split: float
    demo_train: int
    demo_val: int
    demo_seed: int
    input_size: int | None
    augment: bool
    seed: int
    split_file: str | None
    color_jitter: float
    quiet: bool


@dataclass
class DatasetSpec:
    """Train and validation sets plus what a checkpoint must remember about them."""

    train: Dataset
    val: Dataset
    classes: list[str]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str


class DataError(SedensenetError, ValueError):
    """A dataset could not be prepared; the message says what to do."""


def demo_transforms(size: int, mean: Any, std: Any, augment: bool) -> tuple[T.Compose, T.Compose]:
    """Demo-set transforms: flips and light colour jitter (crops could cut the object out)."""
    ev = eval_transform(size, mean, std)
    if not augment:
        return ev, ev
    tr = T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size), T.RandomHorizontalFlip(),
                    T.RandomVerticalFlip(), T.ColorJitter(0.15, 0.15, 0.15), T.ToTensor(),
                    T.Normalize(list(mean), list(std))])
    return tr, ev


def _demo(cfg: DataConfig) -> DatasetSpec:
    size = cfg.input_size or 64
    tr, ev = demo_transforms(size, IMAGENET_MEAN, IMAGENET_STD, cfg.augment)
    train = DemoShapes(cfg.demo_train, seed=cfg.demo_seed, size=64, transform=tr)
    val = DemoShapes(cfg.demo_val, seed=cfg.demo_seed + 1, size=64, transform=ev)
    return DatasetSpec(train, val, list(DemoShapes.classes), size, IMAGENET_MEAN, IMAGENET_STD,
                       f"demo shapes (train {cfg.demo_train} seed {cfg.demo_seed}, val {cfg.demo_val} "
                       f"seed {cfg.demo_seed + 1})")


def _split(targets: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified split: ``fraction`` of every class (at least one image) goes to validation."""
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for label in sorted(set(targets)):
        idx = [i for i, t in enumerate(targets) if t == label]
        perm = [idx[int(j)] for j in torch.randperm(len(idx), generator=g)]
        n_val = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        val_idx += perm[:n_val]
        train_idx += perm[n_val:]
    return sorted(train_idx), sorted(val_idx)


def _split_folder(cfg: DataConfig, root: Path, size: int) -> DatasetSpec:
    """Train and val sets from a split file; images decoded once (train shrunk, val as the eval tensor)."""
    split_file = Path(cfg.split_file or "")
    try:
        rows = read_split_file(split_file, root)
        train_rows, val_rows = select(rows, "train"), select(rows, "val")
    except SplitFileError as exc:
        raise DataError(str(exc)) from None
    classes = sorted({r.cls for r in rows})
    index = {c: i for i, c in enumerate(classes)}
    tr = train_transform(size, IMAGENET_MEAN, IMAGENET_STD, augment=cfg.augment, color_jitter=cfg.color_jitter)
    ev = eval_transform(size, IMAGENET_MEAN, IMAGENET_STD)
    keep = round(size * 1.25)
    try:
        train = PreloadedImages([(r.path, index[r.cls]) for r in train_rows], prepare=lambda im: shrink(im, keep),
                                transform=tr, progress=not cfg.quiet, desc="decode train")
        val = PreloadedImages([(r.path, index[r.cls]) for r in val_rows], prepare=ev, progress=not cfg.quiet,
                              desc="decode val")
    except ImageError as exc:
        raise DataError(str(exc)) from None
    n_test = sum(r.split == "test" for r in rows)
    return DatasetSpec(train, val, classes, size, IMAGENET_MEAN, IMAGENET_STD,
                       f"image folder {root.name} with split file {split_file.name} ({len(train_rows)} train / "
                       f"{len(val_rows)} val; {n_test} test images never read)")


def _folder(cfg: DataConfig) -> DatasetSpec:
    root = Path(cfg.data)
    size = cfg.input_size or 224
    if cfg.split_file:
        return _split_folder(cfg, root, size)
    tr = train_transform(size, IMAGENET_MEAN, IMAGENET_STD, augment=cfg.augment, color_jitter=cfg.color_jitter)
    ev = eval_transform(size, IMAGENET_MEAN, IMAGENET_STD)
    try:
        if (root / "train").is_dir() and (root / "val").is_dir():
            train = ImageFolderDataset(root / "train", tr)
            val = ImageFolderDataset(root / "val", ev, classes=train.classes)
            return DatasetSpec(train, val, train.classes, size, IMAGENET_MEAN, IMAGENET_STD,
                               f"image folder {root} (train/ and val/)")
        full_tr = ImageFolderDataset(root, tr)
        full_ev = ImageFolderDataset(root, ev)
    except ImageError as exc:
        raise DataError(str(exc)) from None
    if not 0 < cfg.val_split < 1:
        raise DataError(f"--val-split must be in (0, 1) for a folder without train/ and val/, got {cfg.val_split}")
    tr_idx, va_idx = _split(full_tr.targets, cfg.val_split, cfg.seed)
    if not tr_idx or not va_idx:
        raise DataError(f"{root} has too few images to hold out {cfg.val_split:.0%} for validation")
    return DatasetSpec(Subset(full_tr, tr_idx), Subset(full_ev, va_idx), full_tr.classes, size, IMAGENET_MEAN,
                       IMAGENET_STD, f"image folder {root} ({len(tr_idx)} train / {len(va_idx)} val images, "
                       f"split {cfg.val_split:g} seed {cfg.seed})")


def network_reachable(host: tuple[str, int] = CIFAR_HOST, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (never, with SEDENSENET_OFFLINE=1)."""
    if os.environ.get("SEDENSENET_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def cifar(name: str, root: Path, size: int = 32, augment: bool = True) -> DatasetSpec:
    """CIFAR-10/100 train and test splits from ``root``; downloads only where a network answers, otherwise
    fails at once with what to do."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    aug = T.Compose([T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]) if augment else T.Compose([])
    norm = [T.ToTensor(), T.Normalize(list(CIFAR_MEAN), list(CIFAR_STD))]
    tr, ev = T.Compose([T.Resize(size), aug, *norm]), T.Compose([T.Resize(size), *norm])
    try:
        train, val = cls(str(root), train=True, transform=tr), cls(str(root), train=False, transform=ev)
    except RuntimeError:
        if not network_reachable():
            raise DataError(f"{name} is not in {root} and cannot be downloaded (no network connection to "
                            f"{CIFAR_HOST[0]}). Download the python version of {name} on a connected machine "
                            f"and extract it into {root}, or use --data demo / an image folder.") from None
        train = cls(str(root), train=True, transform=tr, download=True)
        val = cls(str(root), train=False, transform=ev, download=True)
    return DatasetSpec(train, val, list(train.classes), size, CIFAR_MEAN, CIFAR_STD, f"{name} from {root}")


def build_datasets(cfg: DataConfig) -> DatasetSpec:
    """Datasets for ``cfg.data``: ``demo``, ``cifar10``, ``cifar100`` or a folder path."""
    if cfg.data == "demo":
        return _demo(cfg)
    if cfg.data in ("cifar10", "cifar100"):
        return cifar(cfg.data, Path(cfg.data_dir), cfg.input_size or 32, cfg.augment)
    if Path(cfg.data).is_dir():
        return _folder(cfg)
    raise DataError(f"--data {cfg.data!r} is neither 'demo', 'cifar10', 'cifar100' nor an existing folder")
