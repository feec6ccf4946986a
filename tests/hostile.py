"""A hostile corpus, generated on demand (nothing big is committed): checkpoints, images and zips that once
ended in tracebacks, wrong answers or gigabytes of memory. Used by ``tests/test_hostile.py`` and
``benchmarks/bench_hostile.py``.

Each :class:`Case` says what must happen: ``refuse`` (one clear error matching ``match``), ``warn`` (loads,
with a warning matching ``match``) or ``ok`` (a correct result).
"""

from __future__ import annotations

import copy
import functools
import io
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sedensenet import build_model, save_checkpoint
from sedensenet.data.demo import DEMO_CLASSES, make_sample

CATEGORIES = {
    "huge-config": "tiny checkpoints that claim huge shapes or configs",
    "zip-inflation": "compressed zip entries that inflate",
    "non-finite": "NaN/inf weights, mean or std",
    "image-depth": "16-bit, 32-bit integer and float images",
    "strip": "images that are strips (1×1,000,000, 1×39,000,000, 3×100,000)",
    "input-size": "input_size far beyond the architecture",
    "metadata": "junk metadata and a shared-reference DAG bomb",
    "sparse": "sparse tensors",
    "stats-zip": "class-statistics zips: pixel bombs and bad CRCs",
    "injection": "file and class names with HTML, markdown, terminal escapes and NUL",
    "upload-type": ".tif and .heic uploads",
}


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    kind: str  # "ckpt", "image" or "zip"
    path: Path
    expect: str  # "refuse", "warn" or "ok"
    match: str  # regex the error (refuse) or a warning (warn) must match; for ok: "" or a check hint


@functools.cache
def _small_model() -> Any:
    torch.manual_seed(0)
    return build_model("demo", se="layer", growth_rate=8, block_config=(2, 2, 2), num_init_features=16,
                       reduction=2).eval()


def small_model() -> Any:
    """The demo architecture, tiny: 64² inputs, 8 demo classes (a fresh copy of one cached model)."""
    return copy.deepcopy(_small_model())


def _payload(folder: Path) -> dict[str, Any]:
    """A valid sedensenet checkpoint as the dict torch.load returns (a copy, to be tampered with)."""
    path = folder / "_base.pt"
    if not path.exists():
        save_checkpoint(path, small_model(), {"classes": list(DEMO_CLASSES), "input_size": 64})
    return copy.deepcopy(_load_base(str(path)))


@functools.lru_cache(maxsize=2)
def _load_base(path: str) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def _save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _tamper(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    payload = _payload(folder)
    change(payload)
    return _save(payload, folder / name)


def _raw_state(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in _small_model().state_dict().items()}


def _dag(depth: int = 60) -> list[Any]:
    """2**depth paths through 2·depth list nodes: pickled small, walked naively forever."""
    node: list[Any] = [0]
    for _ in range(depth):
        node = [node, node]
    return node


def _deflated_bomb(folder: Path, floats: int = 1 << 26) -> Path:
    """A real checkpoint whose 256 MiB weight storage is deflated to a few hundred KiB (torch stores, never
    compresses; a hostile file can). Streamed through a temporary file."""
    plain = folder / "_plain.pt"
    torch.save({"features.conv0.weight": torch.zeros(floats)}, plain)
    out = folder / "zip-inflation.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            with src.open(info) as fin, dst.open(info.filename, "w", force_zip64=True) as fout:
                shutil.copyfileobj(fin, fout, 1 << 22)
    plain.unlink()
    return out


def _png(img: Image.Image, path: Path, fmt: str = "PNG") -> Path:
    img.save(path, fmt)
    return path


def reference_picture() -> np.ndarray:
    """An 8-bit greyscale picture with the full value range (the expectation for the deep-bit-depth cases)."""
    grey = np.asarray(make_sample(3, 5, 64).pil.convert("L"), dtype=np.uint8).copy()
    grey[0, 0], grey[0, 1] = 0, 255
    return grey


def _deep_images(folder: Path) -> list[Case]:
    ref = reference_picture().astype(np.uint16)
    i16 = Image.fromarray((ref * 257).astype(np.uint16))  # 0…65535, as a 16-bit scanner or medical image stores it
    f32 = Image.fromarray(ref.astype(np.float32) / 255)  # 0…1 floats, as numpy pipelines save TIFFs
    i32 = Image.fromarray(ref.astype(np.int32) * 257)  # 32-bit integer TIFF holding 16-bit values
    return [Case("grey-16bit.png", "image-depth", "image", _png(i16, folder / "grey-16bit.png"), "ok", "like 8-bit"),
            Case("grey-float.tif", "image-depth", "image", _png(f32, folder / "grey-float.tif", "TIFF"), "ok",
                 "like 8-bit"),
            Case("grey-int32.tif", "image-depth", "image", _png(i32, folder / "grey-int32.tif", "TIFF"), "ok",
                 "like 8-bit")]


def _strip(folder: Path, w: int, h: int) -> Path:
    return _png(Image.new("L", (w, h), 128), folder / f"strip-{w}x{h}.png")


def _heic(folder: Path) -> Path:
    """An ISO-BMFF 'ftyp heic' header as an iPhone writes it (the codec payload is irrelevant: Pillow without a
    HEIF plug-in cannot read any of it)."""
    body = struct.pack(">I4s4sI4s4s4s", 24, b"ftyp", b"heic", 0, b"mif1", b"heic", b"miaf") + b"\0" * 200
    path = folder / "photo.heic"
    path.write_bytes(body)
    return path


def _pixel_bomb_zip(folder: Path, n: int = 40, side: int = 6300) -> Path:
    buf = io.BytesIO()
    Image.new("L", (side, side), 0).save(buf, "PNG", optimize=False)
    png = buf.getvalue()
    path = folder / "stats-pixel-bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            zf.writestr(f"{DEMO_CLASSES[i % len(DEMO_CLASSES)]}/{i}.png", png)
    return path


def _bad_crc_zip(folder: Path) -> Path:
    buf = io.BytesIO()
    make_sample(0, 0, 64).pil.save(buf, "PNG")
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{DEMO_CLASSES[0]}/a.png", buf.getvalue())
    data = bytearray(raw.getvalue())
    start = data.index(b"\x89PNG")
    data[start + 40] ^= 0xFF  # flip one stored byte: the CRC in the headers no longer matches
    path = folder / "stats-bad-crc.zip"
    path.write_bytes(bytes(data))
    return path


def build_corpus(folder: Path, *, big: bool = True) -> list[Case]:
    """Write every hostile input under ``folder``; ``big=False`` leaves out the ones that take seconds to make
    (the 256 MiB deflated checkpoint, the 1×39,000,000 strip and the pixel-bomb zip)."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def ckpt(name: str, category: str, path: Path, expect: str, match: str) -> None:
        cases.append(Case(name, category, "ckpt", path, expect, match))

    # huge-config: the stored config claims far more than the weights hold
    def growth(g: int) -> Callable[[dict[str, Any]], None]:
        return lambda p: p["config"].update(growth_rate=g, block_config=[6, 12, 24, 16])
    ckpt("growth-1024", "huge-config", _tamper(folder, "growth-1024.pt", growth(1024)), "refuse",
         "does not match its weights")
    ckpt("growth-100000", "huge-config", _tamper(folder, "growth-100000.pt", growth(100_000)), "refuse",
         "does not match its weights")
    big_state = _raw_state(folder)
    big_state["features.conv0.weight"] = torch.zeros(1).expand(100_000, 3, 7, 7)  # zero strides: 4 bytes stored
    ckpt("zero-stride", "huge-config", _save(big_state, folder / "zero-stride.pt"), "refuse", "zero or overlapping")
    overlap = _raw_state(folder)
    overlap["classifier.weight"] = torch.zeros(10).as_strided((1_000_000, 10), (0, 1))  # rows share 40 bytes
    ckpt("overlapping-strides", "huge-config", _save(overlap, folder / "overlap.pt"), "refuse", "zero or overlapping")

    def layers(p: dict[str, Any]) -> None:
        p["config"]["block_config"] = [100_000]
    ckpt("100000-layers", "huge-config", _tamper(folder, "layers.pt", layers), "refuse", "does not match its weights")
    # zip-inflation
    if big:
        ckpt("deflated-256MiB", "zip-inflation", _deflated_bomb(folder), "refuse", "inflates to")
    # non-finite
    def weight(value: float) -> Callable[[dict[str, Any]], None]:
        return lambda p: p["state_dict"]["classifier.weight"].view(-1).__setitem__(0, value)
    ckpt("nan-weight", "non-finite", _tamper(folder, "nan-weight.pt", weight(float("nan"))), "refuse", "NaN or inf")
    inf_state = _raw_state(folder)
    inf_state["features.conv0.weight"][0, 0, 0, 0] = float("inf")
    ckpt("inf-weight-state-dict", "non-finite", _save(inf_state, folder / "inf-weight.pt"), "refuse", "NaN or inf")
    ckpt("nan-mean", "non-finite", _tamper(folder, "nan-mean.pt", lambda p: p["meta"].update(
        mean=[float("nan"), 0.5, 0.5])), "refuse", "'mean'\\[0\\] is nan")
    ckpt("inf-std", "non-finite", _tamper(folder, "inf-std.pt", lambda p: p["meta"].update(
        std=[0.2, float("inf"), 0.2])), "refuse", "'std'\\[1\\] is inf")
    ckpt("zero-std", "non-finite", _tamper(folder, "zero-std.pt", lambda p: p["meta"].update(std=[0.2, 0.0, 0.2])),
         "refuse", "'std' must be positive")
    ckpt("overflowing-weights", "non-finite", _tamper(folder, "overflow.pt", lambda p: p["state_dict"][
        "classifier.weight"].fill_(3e38)), "ok", "predict refuses: outputs are not finite")
    # input-size
    ckpt("input-4096-on-64px", "input-size", _tamper(folder, "input-4096.pt", lambda p: p["meta"].update(
        input_size=4096)), "refuse", "usable input sizes are 16…1024")
    ckpt("input-8-on-64px", "input-size", _tamper(folder, "input-8.pt", lambda p: p["meta"].update(input_size=8)),
         "refuse", "usable input sizes are 16…1024")
    # metadata
    ckpt("history-string", "metadata", _tamper(folder, "history-string.pt", lambda p: p["meta"].update(
        history="epoch 1: fine")), "warn", "'history' ignored: 'history' must be a list, not str")
    ckpt("train-args-tensor", "metadata", _tamper(folder, "train-args-tensor.pt", lambda p: p["meta"].update(
        train_args=torch.zeros(3))), "warn", "'train_args' ignored: 'train_args' must be a dict, not Tensor")
    ckpt("history-dag-bomb", "metadata", _tamper(folder, "history-dag.pt", lambda p: p["meta"].update(
        history=_dag())), "warn", "'history' ignored")
    ckpt("train-args-dag-bomb", "metadata", _tamper(folder, "args-dag.pt", lambda p: p["meta"].update(
        train_args={"lr": _dag()})), "warn", "'train_args' ignored")
    ckpt("extra-dag-bomb", "metadata", _tamper(folder, "extra-dag.pt", lambda p: p["meta"].update(notes=_dag())),
         "warn", "metadata 'notes'.* is nested more than 8 levels deep")
    ckpt("resume-dag-bomb", "metadata", _tamper(folder, "resume-dag.pt", lambda p: p["meta"].update(
        resume={"optimizer": _dag()})), "warn", "optimiser state ignored")
    ckpt("history-nan", "metadata", _tamper(folder, "history-nan.pt", lambda p: p["meta"].update(
        history=[{"epoch": 1, "train_loss": float("nan")}])), "warn", "is nan, not a finite number")
    ckpt("classes-string", "metadata", _tamper(folder, "classes-string.pt", lambda p: p["meta"].update(
        classes="circle,square")), "refuse", "'classes' must be a list")
    ckpt("classes-dag-bomb", "metadata", _tamper(folder, "classes-dag.pt", lambda p: p["meta"].update(
        classes=_dag())), "refuse", "must be a string, not list")
    ckpt("class-name-10MB", "metadata", _tamper(folder, "class-long.pt", lambda p: p["meta"]["classes"].__setitem__(
        0, "x" * 10_000_000)), "refuse", "characters long")
    ckpt("meta-not-a-dict", "metadata", _tamper(folder, "meta-list.pt", lambda p: p.update(meta=[1, 2])), "refuse",
         "metadata must be a dict")
    # sparse
    sparse = _raw_state(folder)
    sparse["classifier.weight"] = sparse["classifier.weight"].to_sparse()
    ckpt("sparse-weight", "sparse", _save(sparse, folder / "sparse.pt"), "refuse", "sparse tensors")
    # injection: class names with HTML, markdown, terminal escapes, NUL
    evil = ["<img src=x onerror=alert(1)>", "# :red[BIG] **x**", "\x1b[2J\x1b[31mred", "nul\x00byte",
            "\u202eright-to-left", "$x^2$", "[link](javascript:alert(1))", "ok"]
    ckpt("evil-class-names", "injection", _tamper(folder, "evil-classes.pt", lambda p: p["meta"].update(
        classes=evil)), "warn", "control characters")

    # images
    cases += _deep_images(folder)
    for w, h in ((1_000_000, 1), (3, 100_000), *(((39_000_000, 1),) if big else ())):
        cases.append(Case(f"strip-{w}x{h}", "strip", "image", _strip(folder, w, h), "refuse",
                          "a strip rather than a picture"))
    rgb = make_sample(1, 2, 96).pil
    cases.append(Case("photo.tif", "upload-type", "image", _png(rgb, folder / "photo.tif", "TIFF"), "ok",
                      "same as PNG"))
    cases.append(Case("photo.heic", "upload-type", "image", _heic(folder), "refuse", "HEIC/HEIF"))
    html_name = folder / "<img src=x onerror=alert(1)>.png"
    cases.append(Case("html-file-name", "injection", "image", _png(rgb, html_name), "ok", "escaped"))
    # class-statistics zips
    if big:
        cases.append(Case("pixel-bomb-zip", "stats-zip", "zip", _pixel_bomb_zip(folder), "refuse", "megapixels"))
    cases.append(Case("bad-crc-zip", "stats-zip", "zip", _bad_crc_zip(folder), "refuse", "CRC check failed"))
    (folder / "_base.pt").unlink(missing_ok=True)
    return cases
