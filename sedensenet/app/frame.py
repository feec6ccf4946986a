"""Streamlit glue shared by every page: model picker sidebar, cached loading, image input, cached results.

Only layout and caching live here; every number comes from the library modules.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Heavy modules imported eagerly by every page (a page can be a session's first script): two sessions on a cold
# server must not race on lazy imports (seen: "partially initialized module 'pandas'" inside plotly).
import captum.attr  # noqa: F401
import pandas  # noqa: F401
import plotly.express
import plotly.graph_objects  # noqa: F401
import streamlit as st
import torchvision  # noqa: F401

from sedensenet.analysis.attribution import Attribution
from sedensenet.analysis.capture import Capture
from sedensenet.analysis.pipeline import explain_image, model_view, run_capture
from sedensenet.data.images import ImageError, load_image
from sedensenet.device import describe_device
from sedensenet.models.checkpoint import CheckpointError, LoadedModel, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
MODELS_ENV = "SEDENSENET_MODELS"
MAX_CKPT_MB = 200
# Longest first: "x.weights.h5" is the model "x". ".pth.tar" (CheXNet, timm), ".ckpt" (Lightning), ".bin" (hubs).
CHECKPOINT_EXTENSIONS = (".weights.h5", ".safetensors", ".pth.tar", ".keras", ".ckpt", ".pth", ".bin", ".pt", ".h5")
UPLOAD_TYPES = ["pt", "pth", "tar", "ckpt", "bin", "safetensors", "keras", "h5"]
LOG = logging.getLogger("sedensenet.app")
PAGES = (("app.py", "Explore", ":material/search:"), ("pages/1_Compare.py", "Compare", ":material/compare:"),
         ("pages/2_Class_statistics.py", "Class statistics", ":material/bar_chart:"),
         ("pages/3_Training.py", "Training", ":material/show_chart:"),
         ("pages/4_Model.py", "Model", ":material/account_tree:"), ("pages/5_Learn.py", "Learn", ":material/school:"))


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


def setup_page(title: str, icon: str = "🔎") -> None:
    """Page config (wide layout); call first on every page."""
    st.set_page_config(page_title=f"{title} · sedensenet", page_icon=icon, layout="wide")


def models_dir() -> Path | None:
    """Extra checkpoints folder: ``streamlit run app.py -- --models DIR`` or ``SEDENSENET_MODELS``."""
    import os

    argv = sys.argv[1:]
    if "--models" in argv and argv.index("--models") + 1 < len(argv):
        return Path(argv[argv.index("--models") + 1])
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else None


def _model_stem(path: Path) -> str | None:
    """File name without its checkpoint extension, or ``None`` for files that are not checkpoints."""
    for ext in CHECKPOINT_EXTENSIONS:
        if path.name.endswith(ext) and len(path.name) > len(ext):
            return path.name[: -len(ext)]
    return None


def _families(folder: Path, label: str) -> list[Family]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _model_stem(p) and ".last." not in p.name)
    groups: dict[str, dict[str, str]] = {}
    for p in files:
        stem = _model_stem(p) or p.stem
        for suffix, variant in (("-se", "se"), ("-baseline", "baseline")):
            if stem.endswith(suffix):
                groups.setdefault(stem.removesuffix(suffix), {})[variant] = str(p)
                break
        else:
            groups.setdefault(stem, {})["se"] = str(p)
    return [Family(f"{label}:{name}", f"{name} ({label})", g.get("se"), g.get("baseline"))
            for name, g in groups.items()]


def discover_families() -> list[Family]:
    """Shipped demo models first, then the models folder, then an uploaded checkpoint."""
    found = _families(ASSETS / "models", "shipped")
    extra = models_dir()
    if extra is not None and extra.is_dir():
        found += _families(extra, extra.name or "models")
    upload = st.session_state.get("uploaded_ckpt")
    if upload:
        found.append(Family(f"upload:{upload['digest']}", f"{upload['name']} (uploaded)",
                            f"upload:{upload['digest']}", None))
    return found


@st.cache_resource(max_entries=8, show_spinner="Loading model …")
def _load_file(path: str, mtime: float) -> LoadedModel:
    return load_checkpoint(path)


@st.cache_resource(max_entries=3, show_spinner="Loading uploaded model …")
def _load_bytes(digest: str, _data: bytes) -> LoadedModel:
    return load_checkpoint(_data, max_bytes=MAX_CKPT_MB * 2**20)


def load_source(source: str) -> LoadedModel:
    """Load (cached, shared by all sessions) a model by path or ``upload:<digest>``."""
    if source.startswith("upload:"):
        upload = st.session_state.get("uploaded_ckpt")
        if not upload or f"upload:{upload['digest']}" != source:
            raise CheckpointError("the uploaded checkpoint is no longer in this session; upload it again")
        return _load_bytes(upload["digest"], upload["data"])
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; restore it or pick another model")
    return _load_file(str(path), path.stat().st_mtime)


def remember(key: str) -> Callable[[], None]:
    def copy() -> None:
        st.session_state[key] = st.session_state[f"w_{key}"]
    return copy


def _upload_checkpoint() -> None:
    file = st.session_state.get("w_ckpt_upload")
    if file is None:
        return
    data = file.getvalue()
    if len(data) > MAX_CKPT_MB * 2**20:
        st.session_state["ckpt_error"] = f"{file.name} is over {MAX_CKPT_MB} MB; use a smaller checkpoint"
        return
    key = digest(data)
    try:
        _load_bytes(key, data)
    except CheckpointError as exc:
        st.session_state["ckpt_error"] = str(exc)
        return
    st.session_state["ckpt_error"] = None
    st.session_state["uploaded_ckpt"] = {"name": file.name, "digest": key, "data": data}
    st.session_state["family"] = f"upload:{key}"


def sidebar() -> Selection | None:
    """The shared sidebar: model family picker, SE ⇄ baseline switch, upload, device and classes."""
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.header("Model")
        families = discover_families()
        if not families:
            st.error(f"No checkpoints found in {ASSETS / 'models'}. Train the demo models (README) or upload one.")
            return None
        keys = [f.key for f in families]
        if st.session_state.get("family") not in keys:
            st.session_state["family"] = keys[0]
        st.selectbox("Checkpoint", keys, index=keys.index(st.session_state["family"]), key="w_family",
                     format_func=lambda k: families[keys.index(k)].label, on_change=remember("family"))
        family = families[keys.index(st.session_state["family"])]
        variants = [v for v in ("se", "baseline") if family.source(v)]
        if st.session_state.get("variant") not in variants:
            st.session_state["variant"] = variants[0]
        if len(variants) == 2:
            st.radio("Variant", variants, index=variants.index(st.session_state["variant"]), key="w_variant",
                     horizontal=True, on_change=remember("variant"),
                     format_func=lambda v: "SE model" if v == "se" else "Baseline (no SE)",
                     help="Same image and settings, other model: the SE model or its baseline trained identically.")
        else:
            st.caption("No baseline twin for this checkpoint (name it `<name>-baseline.pt` beside `<name>-se.pt`).")
        variant = st.session_state["variant"]
        source = family.source(variant) or ""
        try:
            loaded = load_source(source)
            twin_variant = "baseline" if variant == "se" else "se"
            twin_source = family.source(twin_variant)
            twin = load_source(twin_source) if twin_source else None
        except CheckpointError as exc:
            st.error(f"Could not load this checkpoint: {exc}")
            return None
        cfg = loaded.config
        multilabel = " · multi-label: independent sigmoid scores" if loaded.meta.get("head_activation") == "sigmoid" \
            else ""
        st.caption(f"**{cfg.arch}** · SE: **{cfg.se}** · {len(loaded.classes)} classes · "
                   f"{loaded.input_size}² input{multilabel}")
        st.caption(f"Device: **{describe_device(loaded.device)}**")
        with st.expander("Classes"):
            st.write(", ".join(loaded.classes[:200]) + (" …" if len(loaded.classes) > 200 else ""))
        with st.expander("Upload a checkpoint"):
            st.file_uploader("sedensenet checkpoint, DenseNet state_dict or Keras file", type=UPLOAD_TYPES,
                             key="w_ckpt_upload", on_change=_upload_checkpoint,
                             help=f"Loaded safely (no pickled code runs), at most {MAX_CKPT_MB} MB.")
            if st.session_state.get("ckpt_error"):
                st.error(st.session_state["ckpt_error"])
    return Selection(family, variant, source, loaded, twin, family.source("baseline" if variant == "se" else "se"))


# ---- images -------------------------------------------------------------------------------------------------

def example_images() -> list[Path]:
    """Shipped example images."""
    folder = ASSETS / "examples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _store_uploads() -> None:
    files = st.session_state.get("w_uploads") or []
    st.session_state["image_errors"] = []
    images = []
    for f in files:
        data = f.getvalue()
        try:
            load_image(data, name=f.name)
        except ImageError as exc:
            st.session_state["image_errors"].append(str(exc))
            continue
        images.append({"name": f.name, "data": data})
    if images:
        st.session_state["images"] = images
        st.session_state["image_idx"] = 0


def _store_examples() -> None:
    chosen = st.session_state.get("w_examples") or []
    images = [{"name": Path(p).name, "data": Path(p).read_bytes()} for p in chosen]
    if images:
        st.session_state["images"] = images
        st.session_state["image_idx"] = 0


def image_input(upload: bool = True) -> None:
    """Upload images (or pick shipped examples); they stay selected across pages."""
    cols = st.columns([3, 2]) if upload else [st.container()]
    if upload:
        with cols[0]:
            st.file_uploader("Upload images", type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
                             accept_multiple_files=True, key="w_uploads", on_change=_store_uploads,
                             help="Any photo or drawing; it is resized and centre-cropped to the model's input.")
    with cols[-1]:
        examples = example_images()
        st.multiselect("…or shipped examples", [str(p) for p in examples], key="w_examples",
                       format_func=lambda p: Path(p).stem, on_change=_store_examples)
    for err in st.session_state.get("image_errors") or []:
        st.error(f"Image refused: {err}")


def current_images() -> list[dict[str, Any]]:
    """The selected images (default: the first shipped example)."""
    if not st.session_state.get("images"):
        ex = example_images()
        st.session_state["images"] = [{"name": ex[0].name, "data": ex[0].read_bytes()}] if ex else []
        st.session_state["image_idx"] = 0
    return st.session_state["images"]


def pick_image() -> tuple[str, bytes] | None:
    """Choose one of the current images (select box when several)."""
    images = current_images()
    if not images:
        st.info("Upload an image to begin.")
        return None
    idx = min(st.session_state.get("image_idx", 0), len(images) - 1)
    if len(images) > 1:
        names = [f"{i + 1}. {im['name']}" for i, im in enumerate(images)]
        st.selectbox("Image", range(len(images)), index=idx, key="w_image_idx", format_func=lambda i: names[i],
                     on_change=remember("image_idx"))
        idx = st.session_state.get("image_idx", idx)
    return images[idx]["name"], images[idx]["data"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


# ---- cached results -----------------------------------------------------------------------------------------

@st.cache_data(max_entries=256, show_spinner=False)
def cached_capture(model_id: str, image_digest: str, _loaded: LoadedModel, _data: bytes) -> Capture:
    """Capture for (model, image bytes); shared across reruns and sessions."""
    return run_capture(_loaded, [load_image(_data)])


@st.cache_data(max_entries=256, show_spinner=False)
def cached_attribution(model_id: str, image_digest: str, method: str, target: int, layer: str | None,
                       smoothgrad: int, _loaded: LoadedModel, _data: bytes) -> Attribution:
    """Attribution for (model, image, method, target, layer, SmoothGrad samples)."""
    return explain_image(_loaded, load_image(_data), method, target, layer=layer, smoothgrad=smoothgrad)


def view_image(loaded: LoadedModel, data: bytes):
    """The image as the model sees it (for overlays)."""
    return model_view(load_image(data), loaded)


def guard(body: Callable[[], None]) -> None:
    """Run a page body; known input problems become one ``st.error``; anything else a short message + log."""
    try:
        body()
    except (CheckpointError, ImageError, ValueError) as exc:
        st.error(str(exc))
    except Exception as exc:  # never show a traceback to the user
        LOG.error("page failed: %s", "".join(traceback.format_exception(exc)))
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Try another image or model; "
                 "the details are in the server log.")
