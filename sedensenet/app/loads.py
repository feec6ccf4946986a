"""Cached loads and results, shared by every session: models, captures, attributions, overlays, figures.

Keys are a model id (path + mtime + size, or an upload's digest) and the image's content digest, never the
objects themselves. ``cache_resource`` hands out the same object without copying: callers never mutate results.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from sedensenet import figures
from sedensenet.analysis import pipeline
from sedensenet.analysis.attribution import Attribution, map_scale, overlay, signed_map
from sedensenet.analysis.capture import Capture
from sedensenet.analysis.flags import near_constant_layers, near_constant_message
from sedensenet.analysis.interventions import Intervention, InterventionResult, run_intervention
from sedensenet.analysis.statistics import ExcitationStats, excitation_stats
from sedensenet.analysis.walkthrough import SEStep, se_step
from sedensenet.data.images import ZipBatches, demo_labelled, labelled_batches, load_image, preprocess
from sedensenet.models.checkpoint import CheckpointError, LoadedModel, load_checkpoint
from sedensenet.models.summary import count_flops

MAX_CKPT_MB = 200


@st.cache_resource(max_entries=8, show_spinner="Loading model …")
def _load_file(path: str, model_id: str) -> LoadedModel:
    return load_checkpoint(path)


@st.cache_resource(max_entries=3, show_spinner="Loading uploaded model …")
def load_bytes(digest: str, _data: bytes, _name: str = "uploaded file") -> LoadedModel:
    """An uploaded checkpoint, once per content digest; messages name the file as the user called it."""
    upload = io.BytesIO(_data)
    upload.name = _name
    return load_checkpoint(upload, max_bytes=MAX_CKPT_MB * 2**20)


def file_id(path: Path) -> str:
    """Cache identity of a checkpoint file: an overwritten file gets a new id (and fresh results)."""
    stat = path.stat()
    return f"{path}@{stat.st_mtime_ns}:{stat.st_size}"


def load_file(path: Path) -> tuple[str, LoadedModel]:
    """``(model id, model)`` of a checkpoint file, loaded once per server."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; restore it or pick another model")
    model_id = file_id(path)
    return model_id, _load_file(str(path), model_id)


@st.cache_resource(max_entries=64, show_spinner=False)
def image(image_digest: str, _data: bytes) -> Image.Image:
    """Decoded image (validated on upload)."""
    return load_image(_data)


@st.cache_resource(max_entries=64, show_spinner=False)
def thumbnail(image_digest: str, _data: bytes, size: int = 160) -> bytes:
    """A small PNG of the image (encoded once: ``st.image`` would re-encode a PIL image on every rerun)."""
    thumb = image(image_digest, _data).copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, "PNG")
    return buf.getvalue()


@st.cache_resource(max_entries=64, show_spinner=False)
def model_view(model_id: str, image_digest: str, _loaded: LoadedModel, _data: bytes) -> Image.Image:
    """The image as the model sees it (resized, centre-cropped): overlays line up with maps."""
    return pipeline.model_view(image(image_digest, _data), _loaded)


@st.cache_resource(max_entries=256, show_spinner=False)
def capture(model_id: str, image_digest: str, _loaded: LoadedModel, _data: bytes) -> Capture:
    """One capture forward for (model, image)."""
    return pipeline.run_capture(_loaded, [image(image_digest, _data)])


MAX_ATTRIBUTIONS = 256


class _Store:
    """Finished attributions by key, oldest evicted first; lets a page show a map only if it exists."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple, Attribution] = OrderedDict()


@st.cache_resource(show_spinner=False)
def _store() -> _Store:
    return _Store()


def cached_attribution(model_id: str, image_digest: str, method: str, target: int, layer: str | None,
                       smoothgrad: int) -> Attribution | None:
    """The attribution if any session computed it before, else None: never computes."""
    store = _store()
    with store.lock:
        return store.items.get((model_id, image_digest, method, target, layer, smoothgrad))


def attribution(model_id: str, image_digest: str, method: str, target: int, layer: str | None, smoothgrad: int,
                _loaded: LoadedModel, _data: bytes) -> Attribution:
    """Compute (or reuse) the attribution for (model, image, method, target, layer, SmoothGrad samples)."""
    key = (model_id, image_digest, method, target, layer, smoothgrad)
    found = cached_attribution(*key)
    if found is not None:
        return found
    result = pipeline.explain_image(_loaded, image(image_digest, _data), method, target, layer=layer,
                                    smoothgrad=smoothgrad)
    store = _store()
    with store.lock:
        store.items[key] = result
        while len(store.items) > MAX_ATTRIBUTIONS:
            store.items.popitem(last=False)
    return result


@st.cache_resource(max_entries=128, show_spinner=False)
def overlay_chart(model_id: str, image_digest: str, attr_key: tuple, sign: str, opacity: float, scale: float | None,
                  presenter: bool, title: str, _view: Image.Image, _map: np.ndarray) -> go.Figure:
    """The overlay of a map on the model's view with its colour bar (cached: going back to a value is instant).

    ``scale`` None = the map's own robust maximum; pass a shared scale to compare two models' maps.
    """
    top = map_scale(signed_map(_map, sign)) if scale is None else scale
    rgba = overlay(_view, _map, sign=sign, opacity=opacity, scale=top)
    return styled(figures.overlay_figure(rgba, sign=sign, scale=top, title=title), presenter)


@st.cache_resource(max_entries=128, show_spinner=False)
def intervention(model_id: str, image_digest: str, spec: Intervention, _loaded: LoadedModel,
                 _data: bytes) -> InterventionResult:
    x = preprocess([image(image_digest, _data)], _loaded.meta)
    return run_intervention(_loaded.model, x, spec)


@st.cache_resource(max_entries=64, show_spinner=False)
def walkthrough(model_id: str, image_digest: str, layer_index: int, channel: int, _loaded: LoadedModel,
                _data: bytes) -> SEStep:
    cap = capture(model_id, image_digest, _loaded, _data)
    x = preprocess([image(image_digest, _data)], _loaded.meta)
    return se_step(_loaded.model, x, cap.records[layer_index], channel)


# ---- figures (built once per model, image and style; Plotly figure construction is the costly part) ----------

@st.cache_resource(max_entries=128, show_spinner=False)
def se_figures(model_id: str, image_digest: str, presenter: bool, _cap: Capture) -> dict:
    """Heat-map, squeeze-vs-excitation scatter and depth summary of one capture, near-constant layers flagged
    (``"note"``: the one-line explanation, or None)."""
    names = [r.name for r in _cap.records]
    exc = [r.excitation[0].tolist() for r in _cap.records]
    sq = [r.squeeze[0].tolist() for r in _cap.records]
    flagged = near_constant_layers(exc)
    out = {"heat": figures.excitation_heatmap(names, exc, flagged=flagged),
           "scatter": figures.squeeze_scatter(names, sq, exc),
           "depth": figures.depth_summary(names, exc, flagged=flagged)}
    styled_figs: dict = {k: styled(v, presenter) for k, v in out.items()}
    styled_figs["note"] = near_constant_message(figures.layer_labels(names), flagged)
    return styled_figs


@st.cache_resource(max_entries=256, show_spinner=False)
def channel_figure(model_id: str, image_digest: str, presenter: bool, layer_index: int, chosen: tuple[int, ...],
                   label: str, _cap: Capture) -> go.Figure:
    """One SE layer's per-channel gates (picked channels highlighted), built once per view."""
    rec = _cap.records[layer_index]
    return styled(figures.channel_bars(rec.excitation[0].tolist(), rec.squeeze[0].tolist(), label, chosen),
                  presenter)


@st.cache_resource(max_entries=128, show_spinner=False)
def prediction_figure(model_id: str, image_digest: str, presenter: bool, k: int, _cap: Capture,
                      _classes: tuple[str, ...]) -> go.Figure:
    return styled(figures.prediction_bars(pipeline.predictions(_cap, _classes, k=k)), presenter)


def styled(fig: go.Figure, presenter: bool) -> go.Figure:
    return figures.presenter_style(fig) if presenter else fig


# ---- class statistics ---------------------------------------------------------------------------------------

def _with_progress(batches: list | ZipBatches) -> Iterator:
    bar = st.progress(0.0, text="computing class-wise excitations …")
    for i, item in enumerate(batches):
        bar.progress((i + 1) / len(batches), text=f"batch {i + 1} of {len(batches)}")
        yield item
    bar.empty()


@st.cache_data(max_entries=16, show_spinner=False)
def demo_stats(model_id: str, per_class: int, seed: int, _loaded: LoadedModel) -> ExcitationStats:
    images, labels = demo_labelled(per_class, seed)
    return excitation_stats(_loaded.model, _with_progress(labelled_batches(images, labels, _loaded.meta)),
                            _loaded.classes, progress=False)


@st.cache_data(max_entries=4, show_spinner=False)
def zip_stats(model_id: str, zip_digest: str, _loaded: LoadedModel, _data: bytes) -> ExcitationStats:
    return excitation_stats(_loaded.model, _with_progress(ZipBatches(_data, _loaded.classes, _loaded.meta)),
                            _loaded.classes, progress=False)


@st.cache_data(max_entries=16, show_spinner="Counting FLOPs …")
def flops(model_id: str, _loaded: LoadedModel) -> int:
    return count_flops(_loaded.model, _loaded.input_size, _loaded.config.in_channels)


@st.cache_resource(max_entries=16, show_spinner=False)
def report_html(model_id: str, twin_id: str | None, image_digest: str, name: str, _loaded: LoadedModel,
                _twin: LoadedModel | None, _data: bytes) -> str:
    """The one-file HTML report of one image (SE model first, its baseline beside it when there is one)."""
    from sedensenet.report import build_report

    return build_report(_loaded, image(image_digest, _data), name, baseline=_twin)
