"""The shared sidebar, drawn once per run by the frame: model family, SE ⇄ baseline, upload, device, presenter.

Its widgets use their state keys directly (the sidebar is on every page, so Streamlit never drops them).
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import streamlit as st

from sedensenet.app import loads
from sedensenet.app.escape import escape_markdown
from sedensenet.app.problems import show_error, user_problem
from sedensenet.app.state import ASSETS, SELECTION, Family, Selection, digest
from sedensenet.device import describe_device
from sedensenet.errors import SedensenetError
from sedensenet.models.checkpoint import CheckpointError, LoadedModel

MODELS_ENV = "SEDENSENET_MODELS"
PREFERRED = ("weather", "demo")  # shipped pairs, best first: the default is the first pair whose files exist


def models_dir() -> Path | None:
    """Extra checkpoints folder: ``streamlit run app.py -- --models DIR`` or ``SEDENSENET_MODELS``."""
    argv = sys.argv[1:]
    if "--models" in argv and argv.index("--models") + 1 < len(argv):
        return Path(argv[argv.index("--models") + 1])
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else None


# Longest first: "x.weights.h5" is the model "x". ".pth.tar" (CheXNet, timm), ".ckpt" (Lightning), ".bin" (hubs).
CHECKPOINT_EXTENSIONS = (".weights.h5", ".safetensors", ".pth.tar", ".keras", ".ckpt", ".pth", ".bin", ".pt", ".h5")
UPLOAD_TYPES = ["pt", "pth", "tar", "ckpt", "bin", "safetensors", "keras", "h5"]


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


def shipped_order(families: list[Family]) -> list[Family]:
    """Complete pairs named in :data:`PREFERRED` first (in that order), then the rest as found."""
    def rank(f: Family) -> tuple[int, str]:
        name = f.key.split(":", 1)[1]
        complete = f.se is not None and f.baseline is not None
        return (PREFERRED.index(name) if complete and name in PREFERRED else len(PREFERRED), f.key)
    return sorted(families, key=rank)


def discover_families() -> list[Family]:
    """Shipped models first (the default pair leading), then the models folder, then an uploaded checkpoint."""
    found = shipped_order(_families(ASSETS / "models", "shipped")) if (ASSETS / "models").is_dir() else []
    extra = models_dir()
    if extra is not None and extra.is_dir():
        found += _families(extra, extra.name or "models")
    upload = st.session_state.get("uploaded_ckpt")
    if upload:
        found.append(Family(f"upload:{upload['digest']}", f"{upload['name']} (uploaded)",
                            f"upload:{upload['digest']}", None))
    return found


def load_source(source: str) -> tuple[str, LoadedModel]:
    """``(model id, model)`` by path or ``upload:<digest>``, loaded once per server."""
    if source.startswith("upload:"):
        upload = st.session_state.get("uploaded_ckpt")
        if not upload or f"upload:{upload['digest']}" != source:
            raise CheckpointError("the uploaded checkpoint is no longer in this session; upload it again")
        return source, loads.load_bytes(upload["digest"], upload["data"], upload["name"])
    return loads.load_file(Path(source))


def _upload_checkpoint() -> None:
    file = st.session_state.get("w_ckpt_upload")
    if file is None:
        return
    data = file.getvalue()
    if len(data) > loads.MAX_CKPT_MB * 2**20:
        st.session_state["ckpt_error"] = f"{file.name} is over {loads.MAX_CKPT_MB} MB; use a smaller checkpoint"
        return
    key = digest(data)
    problem = user_problem(partial(loads.load_bytes, key, data, file.name), f"checkpoint upload {file.name!r}")
    if problem:
        st.session_state["ckpt_error"] = problem
        return
    st.session_state["ckpt_error"] = None
    st.session_state["uploaded_ckpt"] = {"name": file.name, "digest": key, "data": data}
    st.session_state["family"] = f"upload:{key}"  # the picker shows the upload at once


def draw() -> Selection | None:
    """Draw the sidebar; store and return the selection (None: no usable model, the reason is shown)."""
    with st.sidebar:
        st.toggle("Presenter mode", key="presenter",
                  help="For a projector: large type, high-contrast figures, fewer controls.")
        st.header("Model")
        families = discover_families()
        if not families:
            st.error(f"No checkpoints found in {ASSETS / 'models'}. Train the demo models (README) or upload one.")
            return None
        keys = [f.key for f in families]
        if st.session_state.get("family") not in keys:
            st.session_state["family"] = keys[0]
        st.selectbox("Checkpoint", keys, key="family", format_func=lambda k: families[keys.index(k)].label)
        family = families[keys.index(st.session_state["family"])]
        variants = [v for v in ("se", "baseline") if family.source(v)]
        if st.session_state.get("variant") not in variants:
            st.session_state["variant"] = variants[0]
        if len(variants) == 2:
            st.radio("Variant", variants, key="variant", horizontal=True,
                     format_func=lambda v: "SE model" if v == "se" else "Baseline (no SE)",
                     help="Same image and settings, other model: the SE model or its baseline trained identically.")
        else:
            st.caption("No baseline twin for this checkpoint (name it `<name>-baseline.pt` beside `<name>-se.pt`).")
        variant = st.session_state["variant"]
        twin_variant = "baseline" if variant == "se" else "se"
        try:
            model_id, loaded = load_source(family.source(variant) or "")
            twin_source = family.source(twin_variant)
            twin_id, twin = load_source(twin_source) if twin_source else (None, None)
        except SedensenetError as exc:
            show_error(f"Could not load this checkpoint: {exc}")
            return None
        presenter = bool(st.session_state.get("presenter"))
        cfg = loaded.config
        multilabel = " · multi-label: independent sigmoid scores" if loaded.meta.head_activation == "sigmoid" \
            else ""
        st.caption(f"**{escape_markdown(cfg.arch)}** · SE: **{cfg.se}** · {len(loaded.classes)} classes · "
                   f"{loaded.input_size}² input · device: **{describe_device(loaded.device)}**{multilabel}")
        if not presenter:
            with st.expander(f"Classes ({len(loaded.classes)})"):
                st.markdown(escape_markdown(", ".join(loaded.classes[:200]))
                            + (" …" if len(loaded.classes) > 200 else ""))
            with st.expander("Upload a checkpoint"):
                # No ``type=`` filter: the file is identified by its content (a download named ``model.pt.1`` or
                # ``weights.bin`` loads; anything else gets a reason), never by Streamlit's extension check.
                st.file_uploader("sedensenet checkpoint, DenseNet state_dict or Keras file",
                                 key="w_ckpt_upload", on_change=_upload_checkpoint,
                                 help=f"Usually .{', .'.join(UPLOAD_TYPES)}. Loaded safely (no pickled code runs), "
                                      f"at most {loads.MAX_CKPT_MB} MB.")
                if st.session_state.get("ckpt_error"):
                    show_error(st.session_state["ckpt_error"])
        st.caption("Share: the address bar holds a link to this exact view (model, image, page, controls).")
    sel = Selection(family, variant, model_id, loaded, twin, twin_id, presenter)
    st.session_state[SELECTION] = sel
    return sel
