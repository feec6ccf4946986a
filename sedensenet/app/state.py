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

@lru_cache(maxsize=1)
def _labels_file(mtime: float) -> dict[str, Any]:
    try:
        return json.loads((EXAMPLES / "labels.json").read_text())
    except (OSError, ValueError):
        return {}


def example_labels() -> dict[str, Any]:
    """``labels.json`` beside the shipped examples: ``{file: {"label", "note", …}}``."""
    path = EXAMPLES / "labels.json"
    return _labels_file(path.stat().st_mtime) if path.is_file() else {}


def examples() -> list[Path]:
    """Shipped example images."""
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def default_example(classes: Sequence[str]) -> str | None:
    """The first example whose true label is one of the model's classes; else the first unlabelled photo."""
    labels, files = example_labels(), examples()
    for p in files:
        if (labels.get(p.name) or {}).get("label") in classes:
            return p.name
    for p in files:
        if not (labels.get(p.name) or {}).get("label"):
            return p.name
    return files[0].name if files else None


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


def image_options() -> list[str]:
    """Option keys for the image picker: uploads (newest first), then the shipped examples."""
    return [u["key"] for u in reversed(uploads())] + [f"example:{p.name}" for p in examples()]


def picture(key: str) -> Picture | None:
    """The image behind an option key."""
    if key.startswith("upload:"):
        for u in uploads():
            if u["key"] == key:
                return Picture(key, u["name"], u["data"], key.split(":", 2)[1], None)
        return None
    name = key.removeprefix("example:")
    path = EXAMPLES / name
    if not key.startswith("example:") or path.parent != EXAMPLES or not path.is_file():
        return None
    info = example_labels().get(name) or {}
    data = path.read_bytes()
    return Picture(key, name, data, digest(data), info.get("label"), info.get("note", ""))
