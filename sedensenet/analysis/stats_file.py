"""Stats files: class-wise excitation statistics as a versioned JSON or NPZ file, or stored in a checkpoint.

One plain-data form (numbers, strings, lists — nothing executable) serves three places: ``sedensenet stats
--out x.json|x.npz``, the app's Class statistics page (upload → the same figures, no images needed) and a
checkpoint's metadata key ``class_statistics`` (shown by the app at once). Files are treated as hostile: bounded
size, no pickle, every shape and number checked before use.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedensenet.analysis.statistics import ExcitationStats, layer_stats
from sedensenet.bounded import read_bounded
from sedensenet.errors import SedensenetError
from sedensenet.models.metadata import CheckpointMeta

FORMAT = "sedensenet-class-statistics"
VERSION = 1
META_KEY = "class_statistics"
MAX_STATS_BYTES = 64 * 2**20
MAX_LAYERS = 10_000
MAX_CLASSES = 100_000
MAX_VALUES = 8_000_000


class StatsFileError(SedensenetError, ValueError):
    """A stats file (or stored statistics) cannot be used; the message says why."""


def stats_to_dict(stats: ExcitationStats) -> dict[str, Any]:
    """The stored form: a JSON-ready dict of numbers and strings (also what a checkpoint keeps under
    ``class_statistics``). Means and stds are K×C nested lists per layer; ``extra`` carries provenance."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "description": stats.description,
        "classes": list(stats.classes),
        "counts": [int(c) for c in stats.counts],
        "skipped": int(stats.skipped),
        "layers": [{"name": layer.name, "channels": int(layer.channels),
                    "mean": np.asarray(layer.mean, dtype=np.float64).tolist(),
                    "std": np.asarray(layer.std, dtype=np.float64).tolist()} for layer in stats.layers],
        "extra": _plain_extra(stats.extra),
    }


def _plain_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            out[str(key)] = list(value)
    return out


def _matrix(value: Any, k: int, c: int, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise StatsFileError(f"{where} must be a {k}×{c} table of numbers") from None
    if arr.shape != (k, c):
        raise StatsFileError(f"{where} has shape {list(arr.shape)}, expected {k}×{c} (classes × channels)")
    if not np.isfinite(arr).all():
        raise StatsFileError(f"{where} contains NaN or infinite values")
    return arr


def stats_from_dict(doc: Any, *, where: str = "stats file") -> ExcitationStats:
    """Validate the stored form and rebuild :class:`ExcitationStats` (raises :class:`StatsFileError`)."""
    if isinstance(doc, Mapping) and "format" not in doc and {"classes", "counts", "layers"} <= set(doc):
        doc = {**doc, "format": FORMAT, "version": 1}  # ExcitationStats.as_dict() (+ description): version 1
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise StatsFileError(f"{where} is not a sedensenet class-statistics file (no format {FORMAT!r}); "
                             "make one with `sedensenet stats CKPT DATA --out stats.json`")
    version = doc.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise StatsFileError(f"{where} has version {version!r}; this sedensenet reads versions 1…{VERSION}")
    classes, counts, layers = doc.get("classes"), doc.get("counts"), doc.get("layers")
    if not (isinstance(classes, list) and 0 < len(classes) <= MAX_CLASSES and all(isinstance(c, str) for c in classes)):
        raise StatsFileError(f"{where}: 'classes' must be a non-empty list of names")
    k = len(classes)
    if not (isinstance(counts, list) and len(counts) == k
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)):
        raise StatsFileError(f"{where}: 'counts' must be {k} non-negative integers (images per class)")
    if sum(counts) == 0:
        raise StatsFileError(f"{where}: no images were counted")
    if not (isinstance(layers, list) and 0 < len(layers) <= MAX_LAYERS):
        raise StatsFileError(f"{where}: 'layers' must be a non-empty list")
    n = np.asarray(counts, dtype=np.int64)
    out, total = [], 0
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("name"), str):
            raise StatsFileError(f"{where}: layer {i} needs a 'name'")
        c = layer.get("channels")
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise StatsFileError(f"{where}: layer {layer['name']!r} needs a positive integer 'channels'")
        total += 2 * k * c
        if total > MAX_VALUES:
            raise StatsFileError(f"{where} holds more than {MAX_VALUES:,} values; too large to show")
        mean = _matrix(layer.get("mean"), k, c, f"{where}: layer {layer['name']!r} 'mean'")
        std = _matrix(layer.get("std"), k, c, f"{where}: layer {layer['name']!r} 'std'")
        if (std < 0).any():
            raise StatsFileError(f"{where}: layer {layer['name']!r} has negative standard deviations")
        out.append(layer_stats(layer["name"], mean, std, n))
    description = doc.get("description", "")
    skipped = doc.get("skipped", 0)
    extra = doc.get("extra", {})
    return ExcitationStats(list(classes), n, out, str(description) if isinstance(description, str) else "",
                           int(skipped) if isinstance(skipped, int) and skipped >= 0 else 0,
                           _plain_extra(extra) if isinstance(extra, Mapping) else {})


def _to_npz(doc: dict[str, Any]) -> bytes:
    """NPZ: the header (everything but the numbers) as a JSON string, each layer's mean/std as float64 arrays."""
    header = {k: v for k, v in doc.items() if k != "layers"}
    header["layers"] = [{"name": layer["name"], "channels": layer["channels"]} for layer in doc["layers"]]
    arrays = {"header": np.array(json.dumps(header))}
    for i, layer in enumerate(doc["layers"]):
        arrays[f"mean_{i}"] = np.asarray(layer["mean"], dtype=np.float64)
        arrays[f"std_{i}"] = np.asarray(layer["std"], dtype=np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _from_npz(data: bytes, where: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:  # bound the uncompressed size before numpy inflates it
            if sum(i.file_size for i in zf.infolist()) > 4 * MAX_STATS_BYTES:
                raise StatsFileError(f"{where} is too large once uncompressed")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            if not isinstance(header, dict) or not isinstance(header.get("layers"), list):
                raise StatsFileError(f"{where}: the NPZ header is not a stats header")
            if len(header["layers"]) > MAX_LAYERS:
                raise StatsFileError(f"{where}: too many layers")
            for i, layer in enumerate(header["layers"]):
                if not isinstance(layer, dict):
                    raise StatsFileError(f"{where}: layer {i} of the header is not an object")
                layer["mean"], layer["std"] = npz[f"mean_{i}"], npz[f"std_{i}"]
    except StatsFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise StatsFileError(f"{where} is not a readable stats NPZ ({type(exc).__name__}: {exc})") from None
    return header


def stats_to_bytes(stats: ExcitationStats, kind: str = "json") -> bytes:
    """The file content for ``kind`` ``json`` or ``npz``."""
    doc = stats_to_dict(stats)
    if kind == "json":
        return json.dumps(doc).encode()
    if kind == "npz":
        return _to_npz(doc)
    raise StatsFileError(f"stats files are .json or .npz, not {kind!r}")


def save_stats(path: str | os.PathLike[str], stats: ExcitationStats) -> Path:
    """Write ``stats`` to ``path`` (``.json`` or ``.npz`` by suffix) atomically."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("json", "npz"):
        raise StatsFileError(f"--out {path}: use a .json or .npz file name")
    data = stats_to_bytes(stats, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_stats(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> ExcitationStats:
    """Read a stats file (path or uploaded bytes; JSON or NPZ, told apart by content)."""
    data, where = read_bounded(source, limit=MAX_STATS_BYTES, label=name, default="uploaded stats file",
                               error=StatsFileError, too_large="")
    if data[:2] == b"PK":
        doc = _from_npz(data, where)
    else:
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise StatsFileError(f"{where} is neither a stats JSON nor a stats NPZ ({exc})") from None
    return stats_from_dict(doc, where=where)


def _reject_constant(token: str) -> float:
    raise StatsFileError(f"stats file contains {token}; only finite numbers are allowed")


def stats_to_meta(stats: ExcitationStats) -> dict[str, Any]:
    """What a checkpoint stores under ``meta["class_statistics"]`` (plain data that ``weights_only`` loads)."""
    return stats_to_dict(stats)


def stats_from_meta(meta: CheckpointMeta) -> ExcitationStats | None:
    """The statistics a checkpoint carries (``None`` when it carries none); invalid ones raise
    :class:`StatsFileError` saying the checkpoint's stored statistics are unusable."""
    doc = meta.extra.get(META_KEY)
    if doc is None:
        return None
    return stats_from_dict(doc, where="the checkpoint's stored class statistics")


def matches_model(stats: ExcitationStats, classes: list[str], se_layer_names: list[str]) -> list[str]:
    """Reasons why ``stats`` may belong to another model (empty when classes and SE layers agree)."""
    problems = []
    if stats.classes != list(classes):
        problems.append(f"its classes ({', '.join(stats.classes[:6])}{' …' if len(stats.classes) > 6 else ''}) "
                        "differ from the model's")
    names = [layer.name for layer in stats.layers]
    if names != list(se_layer_names):
        problems.append(f"its {len(names)} SE layers differ from the model's {len(se_layer_names)}")
    return problems


def summary_line(stats: ExcitationStats) -> str:
    """``N images, K classes, L SE layers`` (+ skipped), for captions and the CLI."""
    present = int((stats.counts > 0).sum())
    text = f"{int(stats.counts.sum())} images, {present} classes, {len(stats.layers)} SE layers"
    if stats.skipped:
        text += f" ({stats.skipped} unreadable images skipped)"
    return text


__all__ = ["FORMAT", "META_KEY", "VERSION", "StatsFileError", "load_stats", "matches_model", "save_stats",
           "stats_from_dict", "stats_from_meta", "stats_to_bytes", "stats_to_dict", "stats_to_meta", "summary_line"]
