"""Offline demo dataset: procedurally drawn shapes on cluttered, textured backgrounds, with object masks.

Every sample is a pure function of ``(seed, index)``, so a dataset is reproducible without any files, and
its mask is the ground truth for "where should the model look".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.random import Generator
from PIL import Image, ImageDraw

from sedensenet.errors import ConfigError

DEMO_CLASSES = ("circle", "square", "triangle", "star", "heart", "cross", "ring", "arrow")
SUPERSAMPLE = 4


@dataclass(frozen=True)
class DemoSample:
    """One generated image (H×W×3 uint8), its class index and its object mask (H×W bool)."""

    image: np.ndarray
    label: int
    mask: np.ndarray

    @property
    def pil(self) -> Image.Image:
        return Image.fromarray(self.image)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _outline(name: str, rng: Generator) -> list[np.ndarray]:
    """Unit-radius outline polygons of a shape; the first is filled, later ones are holes."""
    if name in ("circle", "ring"):
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        aspect = rng.uniform(0.9, 1.1)
        outer = np.stack([np.cos(t) * aspect, np.sin(t) / aspect], 1)
        return [outer, outer * rng.uniform(0.45, 0.6)] if name == "ring" else [outer]
    if name == "square":
        a = np.pi / 4 + np.arange(4) * np.pi / 2
        return [np.stack([np.cos(a), np.sin(a)], 1)]
    if name == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return [np.stack([np.cos(a), np.sin(a)], 1) * 1.1]
    if name == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
        return [np.stack([np.cos(a) * r, np.sin(a) * r], 1)]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [np.stack([x, y + 2.5], 1) / 16.5]
    if name == "cross":
        w = rng.uniform(0.28, 0.38)
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
               (-w, -w)]
        return [np.array(pts, dtype=float)]
    if name == "arrow":
        w, head = rng.uniform(0.18, 0.26), rng.uniform(0.45, 0.6)
        pts = [(-1, -w), (1 - head, -w), (1 - head, -0.65), (1, 0), (1 - head, 0.65), (1 - head, w), (-1, w)]
        return [np.array(pts, dtype=float)]
    raise ValueError(f"unknown demo class {name!r}")


def _alpha(name: str, size: int, rng: Generator) -> np.ndarray:
    """Anti-aliased coverage (H×W float in [0, 1]) of one randomly placed, sized and rotated shape."""
    big = size * SUPERSAMPLE
    radius = rng.uniform(0.17, 0.36) * size
    margin = radius * 1.15
    centre = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, 2 * np.pi)
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    for i, poly in enumerate(_outline(name, rng)):
        pts = (_rotate(poly, angle) * radius + centre) * SUPERSAMPLE
        draw.polygon([tuple(p) for p in pts], fill=0 if i else 255)
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0


def _colour(rng: Generator) -> np.ndarray:
    """A saturated random colour (HSV with high S and V), as float RGB in [0, 255]."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255


def _background(size: int, rng: Generator) -> np.ndarray:
    """Textured background: gradient, stripes, checker or smooth noise between two muted colours."""
    a, b = _colour(rng) * rng.uniform(0.4, 0.9), _colour(rng) * rng.uniform(0.4, 0.9)
    yy, xx = np.mgrid[0:size, 0:size] / size
    kind = rng.integers(4)
    if kind == 0:
        theta = rng.uniform(0, np.pi)
        w = (np.cos(theta) * xx + np.sin(theta) * yy + 1) / 2
    elif kind == 1:
        theta, freq = rng.uniform(0, np.pi), rng.uniform(3, 10)
        w = (np.sin((np.cos(theta) * xx + np.sin(theta) * yy) * freq * 2 * np.pi) > 0).astype(float)
    elif kind == 2:
        cells = rng.integers(3, 9)
        w = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(float)
    else:
        coarse = rng.uniform(0, 1, (5, 5))
        w = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size),
                                                                              Image.Resampling.BICUBIC)) / 255.0
    img = a * (1 - w[..., None]) + b * w[..., None]
    return img + rng.normal(0, rng.uniform(2, 12), img.shape)


def _clutter(img: np.ndarray, rng: Generator) -> np.ndarray:
    """Random thin strokes and dots (distractors that are none of the classes)."""
    size = img.shape[0]
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(0, 7)):
        colour = tuple(int(c) for c in _colour(rng) * rng.uniform(0.5, 1.0))
        if rng.uniform() < 0.6:
            x0, y0, x1, y1 = rng.uniform(0, size, 4)
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))
        else:
            x, y, r = *rng.uniform(0, size, 2), rng.uniform(1, 2.5)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return np.asarray(pil, dtype=np.float32)


def make_sample(seed: int, index: int, size: int = 64, classes: tuple[str, ...] = DEMO_CLASSES) -> DemoSample:
    """Sample ``index`` of the dataset ``seed``: class ``index % len(classes)``, everything else random."""
    if size < 16:
        raise ConfigError(f"demo images need size ≥ 16, got {size}")
    rng = np.random.default_rng([seed, index])
    label = index % len(classes)
    bg = _clutter(_background(size, rng), rng)
    alpha = _alpha(classes[label], size, rng)[..., None]
    fg = _colour(rng)
    while np.linalg.norm(fg - bg.reshape(-1, 3).mean(0)) < 120:  # keep the object visible
        fg = _colour(rng)
    yy, xx = np.mgrid[0:size, 0:size] / size
    shade = 1 + rng.uniform(-0.25, 0.25) * (xx - 0.5)[..., None] + rng.uniform(-0.25, 0.25) * (yy - 0.5)[..., None]
    fg_img = fg * shade + rng.normal(0, rng.uniform(0, 8), (size, size, 3))
    image = np.clip(bg * (1 - alpha) + fg_img * alpha, 0, 255).astype(np.uint8)
    return DemoSample(image=image, label=label, mask=alpha[..., 0] > 0.5)
