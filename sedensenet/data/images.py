"""Images in, tensors out: safe image loading, the checkpoint's transform, and datasets."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

from sedensenet.bounded import read_bounded
from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.errors import ConfigError, SedensenetError
from sedensenet.models.metadata import RESIZE_MODES, CheckpointMeta

MAX_IMAGE_BYTES = 25 * 2**20
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(SedensenetError, ValueError):
    """An image could not be used; the message says why and what to do."""


MAX_ASPECT = 20  # wider than a 20:1 panorama is a strip: resizing its short side to the input would explode
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")
FORMATS_HINT = "use a JPEG, PNG, WebP, BMP, GIF or TIFF file"


def load_image(source: str | os.PathLike[str] | bytes, *, max_bytes: int = MAX_IMAGE_BYTES,
               max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None,
               min_side: int | None = None) -> Image.Image:
    """Decode an image file safely: bounded size, sides and aspect ratio; EXIF orientation applied;
    16-bit and float pictures scaled by their bit depth; transparency on white; RGB.

    ``min_side``: downscale while decoding (JPEG draft, then integer reduction) but keep the shorter side
    ≥ ``min_side`` — what a model with that input size needs, at a fraction of the memory.
    Raises :class:`ImageError` for anything that is not a usable image.
    """
    data, label = read_bounded(source, limit=max_bytes, label=name, default="uploaded image", error=ImageError,
                               too_large="; use a smaller image")
    if not data:
        raise ImageError(f"{label} is empty")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > max_pixels:
            raise ImageError(f"{label} is {w}×{h} pixels, over the {max_pixels / 1e6:.0f} MP limit; "
                             "downscale it first")
        if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
            raise ImageError(f"{label} is {w}×{h} pixels, a strip rather than a picture (longer side more than "
                             f"{MAX_ASPECT}× the shorter); crop it to a less elongated region")
        if min_side and img.format == "JPEG":
            img.draft("RGB", (min_side, min_side) if w <= h else (min_side * w // h, min_side))
        img.load()
        if min_side and min(img.size) >= 2 * min_side:
            img = img.reduce(min(img.size) // min_side)
        img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
            raise ImageError(f"{label} is a HEIC/HEIF/AVIF photo, which this installation cannot decode; export "
                             f"it as JPEG (iPhone: Settings → Camera → Formats → Most Compatible) or {FORMATS_HINT}"
                             ) from None
        detail = "not an image format Pillow can read" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise ImageError(f"{label} could not be read as an image ({detail}); {FORMATS_HINT}") from None
    img = _eight_bit(img, label)
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def _eight_bit(img: Image.Image, label: str) -> Image.Image:
    """16-bit (``I;16*``), 32-bit integer (``I``) and float (``F``) greyscale → 8-bit ``L`` by value range.

    Pillow's own ``convert`` clips these to 0…255 (a 16-bit photo turns white, a 0…1 float one black).
    Integers: 0…255 as they are, up to 65,535 as 16-bit; floats: 0…1 or 0…255; anything else is stretched
    from its minimum to its maximum.
    """
    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    import numpy as np

    a = np.asarray(img).astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError(f"{label} holds NaN or infinite pixel values; save it as an ordinary 8-bit image")
    lo, hi = float(a.min()), float(a.max())
    if img.mode == "F" and lo >= 0 and hi <= 1:
        scale, offset = 255.0, 0.0
    elif lo >= 0 and hi <= 255:
        scale, offset = 1.0, 0.0
    elif img.mode != "F" and lo >= 0 and hi <= 65535:
        scale, offset = 255 / 65535, 0.0
    else:
        scale, offset = 255 / (hi - lo), lo
    return Image.fromarray(np.clip(np.rint((a - offset) * scale), 0, 255).astype(np.uint8), "L")




def resize_crop(size: int) -> T.Compose:
    """Resize the shorter side to ``size`` and centre-crop a square: what the model sees, as an image."""
    return T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size)])


class Letterbox:
    """Pad to a square with a neutral grey, then resize: keeps the whole picture (a wide panorama's sky and
    ground) at the cost of grey bars."""

    def __init__(self, size: int, fill: tuple[int, int, int] = (124, 116, 104)) -> None:
        self.size, self.fill = size, fill

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), self.fill)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        return canvas.resize((self.size, self.size), Image.Resampling.BILINEAR, reducing_gap=3.0)


def model_input_view(size: int, resize: str = "crop") -> Callable[[Image.Image], Image.Image]:
    """The square picture the model sees: centre crop (``crop``) or padded whole image (``letterbox``)."""
    if resize not in RESIZE_MODES:
        raise ConfigError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    return resize_crop(size) if resize == "crop" else Letterbox(size)


def eval_transform(input_size: int, mean: Sequence[float], std: Sequence[float], resize: str = "crop") -> T.Compose:
    """The inference transform of a checkpoint: square view (crop or letterbox), tensor, normalise."""
    return T.Compose([model_input_view(input_size, resize), T.ToTensor(), T.Normalize(list(mean), list(std))])


def train_transform(input_size: int, mean: Sequence[float], std: Sequence[float], *,
                    augment: bool = True, color_jitter: float = 0.2) -> T.Compose:
    """Standard augmentation (random resized crop, horizontal flip, colour jitter) or the eval transform.

    The jitter changes brightness, contrast and saturation by up to ``color_jitter`` and never the hue: where
    colour carries the class (a sunrise sky versus a sunny one) a hue shift would change the label.
    """
    if not augment:
        return eval_transform(input_size, mean, std)
    jitter = [T.ColorJitter(color_jitter, color_jitter, color_jitter)] if color_jitter > 0 else []
    return T.Compose([
        T.RandomResizedCrop(input_size, scale=(0.6, 1.0), antialias=True),
        T.RandomHorizontalFlip(),
        *jitter,
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])


def checkpoint_transform(meta: CheckpointMeta, *, input_size: int | None = None,
                         resize: str | None = None) -> T.Compose:
    """The eval transform a checkpoint's metadata describes (input size, mean/std, crop or letterbox);
    ``input_size``/``resize`` override the stored choice (e.g. when choosing a view on validation)."""
    return eval_transform(input_size or meta.input_size, meta.mean, meta.std, resize or meta.resize)


def preprocess(images: Sequence[Image.Image], meta: CheckpointMeta) -> torch.Tensor:
    """Batch of PIL images → normalised tensor with the checkpoint's input size and mean/std."""
    tf = checkpoint_transform(meta)
    return torch.stack([tf(img) for img in images])


MAX_ZIP_PIXELS = 400_000_000  # all images of a class-statistics zip, as stored (decoding time is per pixel)


def images_from_zip(data: bytes, *, max_files: int = 5000, max_total_bytes: int = 500 * 2**20,
                    max_bytes: int = MAX_IMAGE_BYTES,
                    max_total_pixels: int = MAX_ZIP_PIXELS) -> list[tuple[str, str, bytes]]:
    """``(class, file name, bytes)`` of the images in a zip of ``<class>/<image>`` folders (any leading folder).

    Bounded before any image is decoded: file count, total uncompressed size (central directory), per-file
    size, and the pixels all images declare in their headers. Paths are never written to disk. A damaged
    entry (bad CRC) is named.
    """
    import zipfile
    import zlib

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImageError("the upload is not a zip archive (or its directory is damaged); zip a folder of "
                         "<class>/<image> sub-folders") from None
    infos = [i for i in archive.infolist() if not i.is_dir() and Path(i.filename).suffix.lower() in IMAGE_EXTENSIONS
             and not any(part.startswith((".", "__MACOSX")) for part in Path(i.filename).parts)
             and len(Path(i.filename).parts) >= 2]
    if len(infos) > max_files:
        raise ImageError(f"the zip holds {len(infos)} images; at most {max_files} are analysed — use a subset")
    if sum(i.file_size for i in infos) > max_total_bytes:
        raise ImageError(f"the zip's images add up to more than {max_total_bytes / 2**20:.0f} MiB uncompressed")
    out, pixels = [], 0
    for info in infos:
        parts = Path(info.filename).parts
        if info.file_size > max_bytes:
            raise ImageError(f"{info.filename} is larger than {max_bytes / 2**20:.0f} MiB")
        try:
            raw = archive.read(info)
        except zipfile.BadZipFile as exc:
            what = "its CRC check failed" if "CRC" in str(exc) else str(exc)
            raise ImageError(f"{info.filename} in the zip is damaged ({what}); create the zip again") from None
        except (zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ImageError(f"{info.filename} in the zip cannot be extracted ({exc}); create the zip again "
                             "without encryption or unusual compression") from None
        pixels += _declared_pixels(raw)
        if pixels > max_total_pixels:
            raise ImageError(f"the zip's images add up to more than {max_total_pixels / 1e6:.0f} megapixels; "
                             "downscale them (a few hundred pixels a side is plenty) or use fewer")
        out.append((parts[-2], parts[-1], raw))
    if not out:
        raise ImageError("no images inside <class>/ folders in the zip; expected e.g. cats/1.jpg, dogs/2.jpg")
    return out


def zip_entries(data: bytes, classes: Sequence[str]) -> tuple[list[tuple[str, str, bytes]], list[int]]:
    """The bounded ``(class, name, bytes)`` entries of a zip of ``<class>/<image>`` folders named after
    ``classes`` and their class indices; nothing is decoded yet."""
    entries = images_from_zip(data)
    unknown = sorted({c for c, _, _ in entries} - set(classes))
    if unknown:
        raise ImageError(f"zip folders {unknown[:10]} are not classes of this model ({', '.join(classes[:10])}"
                         f"{' …' if len(classes) > 10 else ''}); name the folders after the model's classes")
    index = {c: i for i, c in enumerate(classes)}
    return entries, [index[c] for c, _, _ in entries]


def labelled_zip(data: bytes, classes: Sequence[str], min_side: int | None = None
                 ) -> tuple[list[Image.Image], list[int]]:
    """Decoded images (downscaled on decode to a shorter side ≥ ``min_side``) and class indices from a zip of
    ``<class>/<image>`` folders named after ``classes``. Holds every image at once: see :class:`ZipBatches`."""
    entries, labels = zip_entries(data, classes)
    return [load_image(b, name=f"{c}/{n}", min_side=min_side) for c, n, b in entries], labels


class ZipBatches:
    """Labelled batches streamed from a zip of ``<class>/<image>`` folders (the Class statistics upload).

    Everything that can be checked without decoding (file count, sizes, declared pixels, CRCs, folder names) is
    checked on construction; images are decoded one at a time while iterating, downscaled on decode to what the
    model's input needs, so memory holds one batch of small images, never the whole zip decoded.
    """

    def __init__(self, data: bytes, classes: Sequence[str], meta: CheckpointMeta, size: int = 32) -> None:
        self.entries, self.labels = zip_entries(data, classes)
        self.meta, self.size = meta, size

    def __len__(self) -> int:
        return -(-len(self.entries) // self.size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.entries), self.size):  # decode one batch's images only, then batch them
            images = [image for _, image in iter_zip_images(self.entries[i:i + self.size], self.meta.input_size)]
            yield from labelled_batches(images, self.labels[i:i + self.size], self.meta, self.size)


def labelled_batches(images: Sequence[Image.Image], labels: Sequence[int], meta: CheckpointMeta,
                     size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, labels)`` batches of at most ``size`` images with the checkpoint's preprocessing."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return [(preprocess(images[i:i + size], meta), torch.tensor(list(labels[i:i + size])))
            for i in range(0, len(images), size)]


def _declared_pixels(data: bytes) -> int:
    """Pixels an image file declares in its header (0 if unreadable: decoding will name the file)."""
    try:
        w, h = Image.open(io.BytesIO(data)).size
    except Exception:  # a header Pillow cannot parse is reported when the image is decoded
        return 0
    return w * h


def iter_zip_images(entries: Sequence[tuple[str, str, bytes]], min_side: int) -> Iterator[tuple[str, Image.Image]]:
    """Decode ``(class, name, bytes)`` one at a time, downscaled on decode to a shorter side ≥ ``min_side``:
    memory holds one full-size image at most, never the whole zip decoded."""
    for cls, name, raw in entries:
        yield cls, load_image(raw, name=f"{cls}/{name}", min_side=min_side)


class DemoShapes(Dataset):
    """The offline demo dataset: ``n`` samples (balanced classes) generated on the fly from ``seed``."""

    classes: ClassVar[tuple[str, ...]] = DEMO_CLASSES

    def __init__(self, n: int, seed: int = 0, size: int = 64,
                 transform: Callable[[Image.Image], Any] | None = None) -> None:
        if n < 1:
            raise ConfigError(f"DemoShapes needs n ≥ 1, got {n}")
        self.n, self.seed, self.size, self.transform = n, seed, size, transform
        self.targets = [i % len(DEMO_CLASSES) for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        sample = make_sample(self.seed, index, self.size)
        img = sample.pil
        return (self.transform(img) if self.transform else img), sample.label


def demo_labelled(per_class: int, seed: int) -> tuple[list[Image.Image], list[int]]:
    """``per_class`` generated demo images of every shape class, with their labels."""
    ds = DemoShapes(per_class * len(DEMO_CLASSES), seed=seed)
    items = [ds[i] for i in range(len(ds))]
    return [im for im, _ in items], [y for _, y in items]


def find_image_files(root: Path) -> list[Path]:
    """Image files directly under ``root`` (sorted), by extension."""
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class ImageListDataset(Dataset):
    """``(path, label)`` samples loaded lazily with :func:`load_image` (bad files fail with their name)."""

    def __init__(self, samples: Sequence[tuple[Path, int]],
                 transform: Callable[[Image.Image], Any] | None = None) -> None:
        self.samples = list(samples)
        self.targets = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        img = load_image(path)
        return (self.transform(img) if self.transform else img), label


class ImageFolderDataset(ImageListDataset):
    """``root/<class>/<image>`` folders, loaded with :func:`load_image` (bad files fail with their name)."""

    def __init__(self, root: str | os.PathLike[str], transform: Callable[[Image.Image], Any] | None = None,
                 classes: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ImageError(f"image folder {self.root} does not exist")
        found = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        self.classes = list(classes) if classes is not None else found
        if not self.classes:
            raise ImageError(f"{self.root} has no class sub-folders; expected {self.root}/<class>/<image>.jpg")
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise ImageError(f"{self.root} has class folders {unknown} not among the model's classes {self.classes}")
        self.samples: list[tuple[Path, int]] = []
        for idx, name in enumerate(self.classes):
            folder = self.root / name
            if folder.is_dir():
                self.samples.extend((p, idx) for p in find_image_files(folder))
        if not self.samples:
            raise ImageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.root}/<class>/")
        super().__init__(self.samples, transform)
