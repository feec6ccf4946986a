"""Decode a small image set once, shrunk, and keep it in memory for many epochs.

Real photo folders mix 94-px web images with 4,752-px camera files: decoding the large ones every epoch costs
more than the forward pass of a small model. Training decodes each file once, shrinks it to what the transforms
can use, and keeps the result; validation stores the exact evaluation tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sedensenet.data.images import load_image


def shrink(img: Image.Image, short_side: int) -> Image.Image:
    """``img`` with its shorter side reduced to ``short_side`` (never enlarged), antialiased."""
    w, h = img.size
    scale = short_side / min(w, h)
    if scale >= 1:
        return img
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC,
                      reducing_gap=3.0)


class PreloadedImages(Dataset):
    """``(path, label)`` samples decoded once by :func:`load_image`.

    ``prepare`` runs once per image at construction (e.g. shrink, or the whole deterministic eval transform);
    ``transform`` runs per access (random augmentation).
    """

    def __init__(self, samples: Sequence[tuple[Path, int]], *, prepare: Callable[[Image.Image], Any],
                 transform: Callable[[Any], Any] | None = None, progress: bool = True, desc: str = "decode") -> None:
        self.targets = [label for _, label in samples]
        self.paths = [path for path, _ in samples]
        self.items = [prepare(load_image(path)) for path, _ in tqdm(samples, desc=desc, leave=False,
                                                                     disable=not progress, unit="img")]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        item = self.items[index]
        return (self.transform(item) if self.transform else item), self.targets[index]
