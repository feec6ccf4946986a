"""Images and the demo dataset: safe loading, determinism, masks that match the objects, all classes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.data.images import DemoShapes, ImageError, images_from_zip, load_image, preprocess
from sedensenet.models.metadata import CheckpointMeta


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_demo_samples_are_deterministic_and_cover_every_class() -> None:
    a = [make_sample(4, i) for i in range(16)]
    b = [make_sample(4, i) for i in range(16)]
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(make_sample(5, 0).image, a[0].image)
    assert sorted({s.label for s in a}) == list(range(len(DEMO_CLASSES)))
    ds = DemoShapes(40, seed=1)
    assert sorted(set(ds.targets)) == list(range(8)) and len(ds) == 40
    img, label = ds[9]
    assert img.size == (64, 64) and label == 1
    with pytest.raises(IndexError):
        ds[40]


def test_masks_align_with_objects() -> None:
    for i in range(24):
        s = make_sample(11, i)
        img = s.image.astype(float)
        area = s.mask.mean()
        assert 0.02 < area < 0.5, (i, area)
        inside = img[s.mask].mean(0)
        # pixels inside the mask share the object's colour: far more uniform than the cluttered background,
        # and the object colour differs clearly from the background's
        assert img[s.mask].std(0).mean() < 40
        ring = _dilate(s.mask, 3) & ~_dilate(s.mask, 1)
        outside = img[ring].mean(0)
        assert np.linalg.norm(inside - outside) > 40, i


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def _principal_axes_ratio(mask: np.ndarray) -> float:
    """Smaller / larger eigenvalue of the mask's second moments: 1 for shapes with 4-fold (or round) symmetry."""
    ys, xs = np.nonzero(mask)
    eig = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)))
    return float(eig[0] / eig[1])


def test_ring_has_a_hole_and_cross_is_symmetric_shape() -> None:
    ring = next(make_sample(2, i) for i in range(6, 200, 8))
    assert DEMO_CLASSES[ring.label] == "ring"
    ys, xs = np.nonzero(ring.mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    assert not ring.mask[cy, cx]  # the centre of a ring is background
    crosses = [make_sample(2, i, 96) for i in range(5, 5 + 8 * 6, 8)]
    assert {DEMO_CLASSES[c.label] for c in crosses} == {"cross"}
    for cross in crosses:
        ys, xs = np.nonzero(cross.mask)
        assert cross.mask[round(ys.mean()), round(xs.mean())]  # a cross is solid at its centre
        # 90° rotational symmetry makes its second moments isotropic whatever its random rotation
        assert _principal_axes_ratio(cross.mask) > 0.85
    arrows = [make_sample(2, i, 96) for i in range(7, 7 + 8 * 6, 8)]
    assert {DEMO_CLASSES[a.label] for a in arrows} == {"arrow"}
    assert max(_principal_axes_ratio(a.mask) for a in arrows) < 0.6  # the control: an elongated shape is not


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_images_from_zip_reads_class_folders_and_skips_the_rest() -> None:
    png = _png(Image.new("RGB", (8, 8), (1, 2, 3)))
    data = _zip({"set/cats/1.png": png, "set/dogs/2.PNG": png, "set/dogs/notes.txt": b"x", "loose.png": png,
                 "__MACOSX/set/cats/._1.png": b"junk", "set/.hidden/3.png": png})
    got = images_from_zip(data)
    assert [(c, n) for c, n, _ in got] == [("cats", "1.png"), ("dogs", "2.PNG")]
    assert all(b == png for _, _, b in got)


def test_images_from_zip_limits() -> None:
    png = _png(Image.new("RGB", (8, 8)))
    three = _zip({f"c/{i}.png": png for i in range(3)})
    assert len(images_from_zip(three, max_files=3)) == 3
    with pytest.raises(ImageError, match="holds 3 images; at most 2"):
        images_from_zip(three, max_files=2)
    # a zip bomb: 3 MiB of zeros compress to a few KiB; the uncompressed total is checked before reading
    bomb = _zip({"c/big.png": b"\0" * (3 * 2**20)})
    assert len(bomb) < 2**16
    with pytest.raises(ImageError, match="more than 2 MiB uncompressed"):
        images_from_zip(bomb, max_total_bytes=2 * 2**20)
    with pytest.raises(ImageError, match="big.png is larger than 1 MiB"):
        images_from_zip(bomb, max_bytes=2**20)
    with pytest.raises(ImageError, match="not a zip archive"):
        images_from_zip(png)
    with pytest.raises(ImageError, match="no images inside <class>/ folders"):
        images_from_zip(_zip({"top.png": png, "readme.md": b"hi"}))


def test_load_image_handles_exif_alpha_and_rejects_bad_input(tmp_path) -> None:
    base = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = base.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° CW on display
    rotated = load_image(_png(base, "JPEG", exif=exif))
    assert rotated.size == (20, 40)
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(_png(rgba)).getpixel((0, 0)) == (255, 255, 255)  # transparency on white
    with pytest.raises(ImageError, match="could not be read as an image"):
        load_image(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageError, match="could not be read as an image"):
        load_image(b"hello world, not an image")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="larger than"):
        load_image(_png(base), max_bytes=10)
    with pytest.raises(ImageError, match="over the .* MP limit"):
        load_image(_png(Image.new("RGB", (3000, 3000))), max_pixels=1_000_000)
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_preprocess_uses_checkpoint_size_and_normalisation() -> None:
    img = Image.new("RGB", (100, 50), (255, 0, 128))
    x = preprocess([img, img], CheckpointMeta(classes=["a"], input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5)))
    assert x.shape == (2, 3, 32, 32)
    assert x[0, 0].mean().item() == pytest.approx(1.0, abs=1e-3)  # (1 - .5) / .5
    assert x[0, 1].mean().item() == pytest.approx(-2.0, abs=1e-3)  # (0 - .5) / .25
