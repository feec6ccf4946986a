"""Session state: the keys every page shares, widget values that survive page switches, the analysed image.

Streamlit drops a widget's value when a page without that widget runs. Values that must survive (and that the
share link carries) live under a plain key; the widget uses ``w_<key>`` and copies back on change (:func:`keep`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import streamlit as st

from sedensenet.app.problems import user_problem
from sedensenet.data.images import IMAGE_EXTENSIONS, load_image
from sedensenet.models.checkpoint import LoadedModel

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
EXAMPLES = ASSETS / "examples"
SELECTION = "_selection"


@dataclass(frozen=True)
class Family:
    """A model and its baseline twin (either may be missing): ``name-se.pt`` + ``name-baseline.pt``."""

    key: str
    label: str
    se: str | None
    baseline: str | None

    def source(self, variant: str) -> str | None:
        return self.baseline if variant == "baseline" else self.se


@dataclass
class Selection:
    """What the sidebar selected: the active model (SE or baseline variant) and its twin, if any."""

    family: Family
    variant: str
    model_id: str
    loaded: LoadedModel
    twin: LoadedModel | None
    twin_id: str | None
    presenter: bool = False

    @property
    def pair(self) -> tuple[tuple[str, LoadedModel], tuple[str, LoadedModel]] | None:
        """``((se_id, se_model), (baseline_id, baseline_model))`` when both exist."""
        if self.twin is None or self.twin_id is None:
            return None
        mine, other = (self.model_id, self.loaded), (self.twin_id, self.twin)
        return (mine, other) if self.variant == "se" else (other, mine)


@dataclass(frozen=True)
class Picture:
    """The analysed image: option key, display name, bytes, content digest and true label (when known)."""

    key: str
    name: str
    data: bytes
    digest: str
    label: str | None
    note: str = ""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def selection() -> Selection:
    """The model the shared sidebar selected in this run (pages run only after the sidebar drew)."""
    return st.session_state[SELECTION]


def keep(key: str, default: Any, valid: Sequence[Any] | None = None) -> dict[str, Any]:
    """Widget kwargs that bind widget ``w_<key>`` to the persistent ``key`` (seeded with ``default``).

    A stored value outside ``valid`` (an option list) falls back to ``default``. Pass no index/value to the
    widget: the seeded session value is its value.
    """
    value = st.session_state.get(key, default)
    if valid is not None and value not in valid:
        value = default
    st.session_state[key] = value
    st.session_state[f"w_{key}"] = value
    return {"key": f"w_{key}", "on_change": _copy_back, "args": (key,)}


def _copy_back(key: str) -> None:
    st.session_state[key] = st.session_state[f"w_{key}"]


# ---- images -------------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _labels_file(path: Path, mtime: float) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _example_folders() -> list[Path]:
    """``assets/examples`` and its sub-folders: one example set each (the shapes at the top, ``weather/``…)."""
    if not EXAMPLES.is_dir():
        return []
    return [EXAMPLES, *sorted(d for d in EXAMPLES.iterdir() if d.is_dir())]


def _folder_labels(folder: Path) -> dict[str, Any]:
    path = folder / "labels.json"
    return _labels_file(path, path.stat().st_mtime) if path.is_file() else {}


def example_labels() -> dict[str, Any]:
    """Every set's ``labels.json`` (``{file: {"label", "note", "source", …}}``), keyed by the example's path
    relative to ``assets/examples`` (``circle.png``, ``weather/coffee-cup.jpg``)."""
    out: dict[str, Any] = {}
    for folder in _example_folders():
        prefix = "" if folder == EXAMPLES else f"{folder.name}/"
        out.update({prefix + k: v for k, v in _folder_labels(folder).items() if not k.startswith("_")})
    return out


def _set_classes(folder: Path) -> set[str]:
    """The classes a set's photos are meant for: its ``_classes`` entry and every true label in it."""
    labels = _folder_labels(folder)
    declared = labels.get("_classes") if isinstance(labels.get("_classes"), list) else []
    return {str(c) for c in declared} | {str(v["label"]) for k, v in labels.items()
                                         if not k.startswith("_") and isinstance(v, dict) and v.get("label")}


def examples(classes: Sequence[str] = ()) -> list[str]:
    """Shipped example images (paths relative to ``assets/examples``): the sets meant for a model with
    ``classes`` first, then the others (still worth trying: they show what an out-of-world image does)."""
    wanted = set(classes)
    sets = sorted(_example_folders(), key=lambda f: not (_set_classes(f) & wanted))  # stable: shapes, then a–z
    return [str(p.relative_to(EXAMPLES)) for folder in sets
            for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]


def default_example(classes: Sequence[str]) -> str | None:
    """The first example whose true label is one of the model's classes; else the ``_default`` (or first) photo
    of a set meant for the model; else the first unlabelled photo."""
    labels, files = example_labels(), examples(classes)
    for name in files:
        if (labels.get(name) or {}).get("label") in classes:
            return name
    for folder in _example_folders():
        if folder != EXAMPLES and _set_classes(folder) & set(classes):
            chosen = f"{folder.name}/{_folder_labels(folder).get('_default')}"  # the set's own first pick
            return chosen if chosen in files else next((n for n in files if n.startswith(f"{folder.name}/")),
                                                        files[0])
    for name in files:
        if not (labels.get(name) or {}).get("label"):
            return name
    return files[0] if files else None


def uploads() -> list[dict[str, Any]]:
    """Images this session uploaded or photographed, oldest first."""
    return st.session_state.setdefault("uploads", [])


def add_upload(name: str, data: bytes) -> str | None:
    """Validate and keep an uploaded image; returns its option key (None when refused: error stored)."""
    problem = user_problem(partial(load_image, data, name=name), f"image upload {name!r}")
    if problem:
        st.session_state.setdefault("image_errors", []).append(problem)
        return None
    key = f"upload:{digest(data)}:{name}"  # the option's label needs no session state
    if all(u["key"] != key for u in uploads()):
        uploads().append({"key": key, "name": name, "data": data})
    return key


def image_options(classes: Sequence[str] = ()) -> list[str]:
    """Option keys for the image picker: uploads (newest first), then the shipped examples (the model's sets
    first)."""
    return [u["key"] for u in reversed(uploads())] + [f"example:{name}" for name in examples(classes)]


def picture(key: str) -> Picture | None:
    """The image behind an option key."""
    if key.startswith("upload:"):
        for u in uploads():
            if u["key"] == key:
                return Picture(key, u["name"], u["data"], key.split(":", 2)[1], None)
        return None
    name = key.removeprefix("example:")
    if not key.startswith("example:") or name not in examples():  # a shipped example, never a path from a link
        return None
    path = EXAMPLES / name
    info = example_labels().get(name) or {}
    data = path.read_bytes()
    return Picture(key, path.name, data, digest(data), info.get("label"), info.get("note", ""))
