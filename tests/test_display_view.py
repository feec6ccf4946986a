"""The overlay's display view: the model's crop (or letterbox) at a readable size."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sedensenet.analysis.pipeline import display_view, model_view


def _loaded(resize: str = "crop", size: int = 64) -> SimpleNamespace:
    return SimpleNamespace(input_size=size, meta=SimpleNamespace(resize=resize))


def _gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], -1).astype(np.uint8))


@pytest.mark.parametrize(("w", "h", "side"), [(80, 60, 256), (640, 480, 480), (4000, 3000, 1024)])
def test_size_is_the_images_own_within_bounds(w: int, h: int, side: int) -> None:
    assert display_view(_gradient(w, h), _loaded()).size == (side, side)


@pytest.mark.parametrize("resize", ["crop", "letterbox"])
def test_same_picture_as_the_model_sees(resize: str) -> None:
    img = _gradient(400, 250)
    loaded = _loaded(resize)
    big = display_view(img, loaded)
    small = np.asarray(big.resize((64, 64), Image.Resampling.BOX), dtype=float)
    seen = np.asarray(model_view(img, loaded), dtype=float)
    assert np.abs(small - seen).mean() < 4  # same crop/letterbox geometry, only the resolution differs
    assert big.size == ((256, 256) if resize == "crop" else (400, 400))  # 250 px short side → at least 256
