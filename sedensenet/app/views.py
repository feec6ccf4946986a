"""Blocks several pages lay out: the image picker (with thumbnail and true label), the prediction panel,
the attribution panel and layer labels. Pages compose these; the numbers come from the library via ``loads``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import streamlit as st

from sedensenet.analysis.attribution import METHODS, SIGN_MODES, gradcam_layers
from sedensenet.analysis.capture import Capture
from sedensenet.analysis.pipeline import outside_note, predictions
from sedensenet.app import loads, state
from sedensenet.app.escape import escape_markdown as md
from sedensenet.app.problems import show_error
from sedensenet.app.state import Picture, Selection
from sedensenet.figures import layer_labels

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
# Methods that cost many forwards/backwards: computed only on an explicit click (or shown from the cache).
EXPENSIVE = ("integrated_gradients", "gradient_shap", "occlusion")
PRED_TARGET = "top-1"


def method_label(method: str) -> str:
    """"Integrated Gradients" for ``integrated_gradients``: captions never show raw keys."""
    return METHODS[method].label


def layer_label(name: str) -> str:
    """``b1.l1 · features.denseblock1.denselayer1.se``: the short label charts use, then the full name."""
    short = layer_labels([name])[0]
    return name if short == name else f"{short} · {name}"


# ---- the analysed image -------------------------------------------------------------------------------------

def _store_uploads() -> None:
    """New files in the uploader become the analysed image (the newest one); removed files are forgotten."""
    files = st.session_state.get("w_uploads") or []
    st.session_state["image_errors"] = []
    current = {}
    for f in files:
        data = f.getvalue()
        current[f"upload:{state.digest(data)}:{f.name}"] = (f.name, data)
    seen = st.session_state.get("upload_seen", [])
    for key in seen:
        if key not in current:
            state.uploads()[:] = [u for u in state.uploads() if u["key"] != key]
    for key, (name, data) in current.items():
        if key not in seen and (added := state.add_upload(name, data)):
            st.session_state["image"] = added
    st.session_state["upload_seen"] = list(current)


def _store_camera() -> None:
    photo = st.session_state.get("w_camera")
    if photo is None:
        return
    n = len([u for u in state.uploads() if u["name"].startswith("camera-")]) + 1
    st.session_state["image_errors"] = []
    if added := state.add_upload(f"camera-{n}.jpg", photo.getvalue()):
        st.session_state["image"] = added


def _option_label(key: str, labels: dict) -> str:
    if key.startswith("upload:"):
        return f"{key.split(':', 2)[-1]} (yours)"
    name = key.removeprefix("example:")
    label = (labels.get(name) or {}).get("label")
    return f"{Path(name).stem} — example, true label: {label}" if label else f"{Path(name).stem} — example"


def image_picker(sel: Selection, *, upload: bool = True) -> Picture | None:
    """Upload / photograph / pick the analysed image, then show which one it is (thumbnail + true label)."""
    presenter = sel.presenter
    if upload and not presenter:
        c1, c2 = st.columns([3, 2])
        # No ``type=`` filter: every file is checked by decoding it, so a .tif that Pillow reads is accepted and
        # a .heic it cannot read gets a polite reason (Streamlit's own filter raises instead).
        c1.file_uploader("Upload images (the newest one is analysed)", accept_multiple_files=True,
                         key="w_uploads", on_change=_store_uploads,
                         help="Any photo or drawing (JPEG, PNG, WebP, BMP, GIF, TIFF); it is resized and "
                              "centre-cropped to the model's input.")
        if c2.toggle("Take a photo with the camera", key="w_use_camera"):
            c2.camera_input("Camera", key="w_camera", on_change=_store_camera)
    for err in st.session_state.get("image_errors") or []:
        show_error(f"Image refused: {err}")
    options = state.image_options(sel.loaded.classes)
    if not options:
        st.info("Upload an image to begin.")
        return None
    default = f"example:{state.default_example(sel.loaded.classes)}"
    pic = state.picture(st.session_state.get("image", default))
    if pic is None:
        st.session_state["image"] = default if default in options else options[0]
    thumb, pick = st.columns([1, 5])
    with pick:
        labels = state.example_labels()
        st.selectbox("Analysed image", options, format_func=partial(_option_label, labels=labels),
                     **state.keep("image", default, options))
        pic = state.picture(st.session_state["image"])
        if pic is None:
            return None
        truth = (f"true label **{md(pic.label)}** (labels.json)" if pic.label
                 else "true label unknown" if pic.key.startswith("upload:")
                 else "no true label: none of the classes" if pic.note else "true label unknown")
        st.markdown(f"Analysing **{md(pic.name)}** — {truth}" + (f" · {md(pic.note)}" if pic.note and not presenter
                                                                   else ""))
    with thumb:
        st.image(loads.thumbnail(pic.digest, pic.data), width=110)
    return pic


# ---- prediction ---------------------------------------------------------------------------------------------

def prediction_panel(model_id: str, loaded, pic: Picture, cap: Capture, *, presenter: bool, key: str = "pred",
                     title: str = "Prediction") -> None:
    """Top-k bars, the model's class list and, for an image far from the training world, a plain note."""
    classes = loaded.classes
    top = predictions(cap, classes, k=min(5, len(classes)))
    verdict = ""
    if pic.label is not None:
        verdict = " ✓ matches the true label" if top[0]["class"] == pic.label else f" ✗ true label: {md(pic.label)}"
    st.subheader(title)
    st.markdown(f"**{md(top[0]['class'])}** ({top[0]['prob']:.1%}){verdict}")
    st.plotly_chart(loads.prediction_figure(model_id, pic.digest, presenter, len(top), cap, tuple(classes)),
                    width="stretch", key=key)
    shown = ", ".join(classes[:40]) + (" …" if len(classes) > 40 else "")
    st.caption(f"The model knows {len(classes)} classes: {md(shown)}.")
    if note := outside_note(top[0]["prob"], classes):
        st.warning(note, icon="🧭")


# ---- attribution --------------------------------------------------------------------------------------------

def attribution_controls(sel: Selection, cap: Capture, *, prefix: str = "", model_name: str | None = None) -> dict:
    """Method, target, sign, opacity (+ Grad-CAM layer, SmoothGrad) widgets; returns the choices.

    The target list is class names (plus "top-1"), never probabilities: the label cannot go stale when the
    model changes, and "top-1" always means the *current* model's prediction.
    """
    classes = sel.loaded.classes
    methods = list(METHODS)
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", methods, format_func=method_label,
                          **state.keep(f"{prefix}method", "gradcam", methods))
    targets = [PRED_TARGET, *classes]
    choice = c2.selectbox("Target class", targets, format_func=lambda t: "top-1 prediction" if t == PRED_TARGET
                          else t, **state.keep(f"{prefix}target", PRED_TARGET, targets))
    target = cap.top_k(1)[0][0] if choice == PRED_TARGET else classes.index(choice)
    sign, layer, smooth = "positive", None, 0
    if not sel.presenter:
        sign = c3.radio("Sign", SIGN_MODES, horizontal=True, **state.keep(f"{prefix}sign", "positive", SIGN_MODES))
    c4, c5, c6 = st.columns(3)
    opacity = c4.slider("Opacity", 0.0, 1.0, step=0.05, **state.keep(f"{prefix}opacity", 0.65))
    if METHODS[method].needs_layer and not sel.presenter:
        layers = gradcam_layers(sel.loaded.model)
        layer = c5.selectbox("Grad-CAM layer", layers, format_func=layer_label,
                             **state.keep(f"{prefix}gradcam_layer", layers[-1], layers))
    if METHODS[method].smoothgrad and not sel.presenter:
        smooth = int(c6.number_input("SmoothGrad samples (0 = off)", 0, 32, step=1,
                                     **state.keep(f"{prefix}smooth", 0)))
    p = float(cap.probs[0, target])
    who = model_name or ("SE model" if sel.variant == "se" else "baseline")
    spec = METHODS[method]
    st.caption(f"{spec.label} — {spec.description}. Target **{md(classes[target])}**: {p:.1%} under the {who}.")
    return {"method": method, "target": target, "sign": sign, "opacity": float(opacity), "layer": layer,
            "smooth": smooth}


def needs_click(method: str, smooth: int) -> bool:
    """Expensive attributions (IG, GradientSHAP, occlusion, anything with SmoothGrad) wait for a click."""
    return method in EXPENSIVE or smooth > 0


def attribution_results(models: list[tuple[str, object]], pic: Picture, c: dict, *, button_key: str) -> list | None:
    """Attributions for the choices ``c`` on each ``(model_id, loaded)``: from the cache, computed at once when
    cheap, else after one click (None until then). Nothing else ever triggers an expensive method."""
    keys = [(mid, pic.digest, c["method"], c["target"], c["layer"], c["smooth"]) for mid, _ in models]
    found = [loads.cached_attribution(*k) for k in keys]
    if all(f is not None for f in found):
        return found
    if needs_click(c["method"], c["smooth"]):
        st.info(f"{method_label(c['method'])}{' with SmoothGrad' if c['smooth'] else ''} takes a while on a CPU: "
                "it runs only when you ask.")
        what = "for both models" if len(models) > 1 else ""
        if not st.button(f"Compute {method_label(c['method'])} {what}".strip(), key=button_key, type="primary"):
            return None
    with st.spinner(f"Computing {method_label(c['method'])} …"):
        return [loads.attribution(*k, loaded, pic.data) for k, (_, loaded) in zip(keys, models, strict=True)]


def overlay_chart(sel: Selection, model_id: str, loaded, pic: Picture, attr, c: dict, *, key: str,
                  scale: float | None = None, title: str = "") -> None:
    """The overlay with its colour bar (one colour scale when ``scale`` is shared between models)."""
    view = loads.model_view(model_id, pic.digest, loaded, pic.data)
    fig = loads.overlay_chart(model_id, pic.digest, (c["method"], c["target"], c["layer"], c["smooth"]), c["sign"],
                              c["opacity"], scale, sel.presenter, title, view, attr.map)
    st.plotly_chart(fig, width="stretch", key=key)
