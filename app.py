"""sedensenet — Explore: predictions, SE excitations, attributions and interventions for your images.

Run: ``streamlit run app.py`` (extra checkpoints: ``streamlit run app.py -- --models DIR`` or SEDENSENET_MODELS).
"""

from __future__ import annotations

# Heavy modules imported eagerly: two sessions on a cold server must not race on lazy imports.
import io
import json

import captum.attr  # noqa: F401
import numpy as np
import pandas as pd
import plotly.express
import plotly.graph_objects  # noqa: F401
import streamlit as st
import torchvision  # noqa: F401
from PIL import Image

from sedensenet import figures
from sedensenet.analysis.attribution import METHODS, SIGN_MODES, gradcam_layers, overlay
from sedensenet.analysis.interventions import Intervention, run_intervention
from sedensenet.analysis.pipeline import predictions, resolve_target
from sedensenet.app import frame as ui
from sedensenet.data.images import load_image, preprocess

ui.setup_page("Explore")


def records_table(cap) -> pd.DataFrame:
    rows = []
    for r in cap.records:
        for c in range(r.channels):
            rows.append({"layer": r.name, "index": r.index, "block": r.block, "dense_layer": r.layer,
                         "placement": r.placement, "channel": c, "squeeze": float(r.squeeze[0, c]),
                         "excitation": float(r.excitation[0, c])})
    return pd.DataFrame(rows)


def html_download(fig, name: str, label: str) -> None:
    st.download_button(label, fig.to_html(include_plotlyjs="cdn"), file_name=name, mime="text/html")


def body() -> None:
    sel = ui.sidebar()
    st.title("Explore: what do the SE blocks do with your image?")
    if sel is None:
        return
    loaded = sel.loaded
    ui.image_input()
    picked = ui.pick_image()
    if picked is None:
        return
    name, data = picked
    with st.spinner("Running the model …"):
        cap = ui.cached_capture(sel.model_id, ui.digest(data), loaded, data)
    classes = loaded.classes
    top = predictions(cap, classes, k=min(5, len(classes)))
    left, right = st.columns([1, 2])
    with left:
        st.image(load_image(data), caption=name, width=260)
    with right:
        st.subheader("Prediction")
        st.markdown(f"**{top[0]['class']}** ({top[0]['prob']:.1%}) — model: `{loaded.config.arch}`, "
                    f"SE: `{loaded.config.se}`")
        st.plotly_chart(figures.prediction_bars(top), width="stretch", key="pred")

    tabs = st.tabs(["SE excitations", "Attribution", "Interventions", "Downloads"])
    with tabs[0]:
        se_tab(cap)
    with tabs[1]:
        attribution_tab(sel, data, cap)
    with tabs[2]:
        intervention_tab(sel, data, cap)
    with tabs[3]:
        downloads_tab(cap, classes, name, top)


def se_tab(cap) -> None:
    if not cap.records:
        st.info("This model has no SE layers (it is the baseline). Switch to the SE model in the sidebar to see "
                "its channel gates — the image and settings stay.")
        return
    names = [r.name for r in cap.records]
    exc = [r.excitation[0].tolist() for r in cap.records]
    sq = [r.squeeze[0].tolist() for r in cap.records]
    st.caption("Each row is one SE layer (forward order), each cell one channel's gate: 1 = passed unchanged, "
               "0 = silenced. Hover for values.")
    st.plotly_chart(figures.excitation_heatmap(names, exc), width="stretch", key="heat")
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**One layer's channels** (select bars to pick channels for an intervention)")
        layer = st.selectbox("SE layer", range(len(names)), format_func=lambda i: names[i], key="w_bar_layer")
        chosen = st.session_state.get("picked_channels", {}).get(names[layer], [])
        event = st.plotly_chart(figures.channel_bars(exc[layer], sq[layer], figures.layer_labels(names)[layer],
                                                     chosen), width="stretch", key="bars", on_select="rerun",
                                selection_mode=("points", "box"))
        points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
            getattr(getattr(event, "selection", None), "points", []) or []
        if points:
            picked = sorted({int(p["x"]) for p in points})
            st.session_state.setdefault("picked_channels", {})[names[layer]] = picked
            st.caption(f"Picked channels {picked} of {names[layer]} — see the Interventions tab.")
    with c2:
        st.markdown("**Squeeze vs excitation** (every channel of every layer)")
        st.plotly_chart(figures.squeeze_scatter(names, sq, exc), width="stretch", key="scatter")
    st.markdown("**Depth summary**: how strongly each SE layer gates, from input to output")
    st.plotly_chart(figures.depth_summary(names, exc), width="stretch", key="depth")


def attribution_tab(sel, data: bytes, cap) -> None:
    loaded = sel.loaded
    classes = loaded.classes
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Method", list(METHODS), format_func=lambda m: METHODS[m].split(" — ")[0],
                          key="w_method", index=list(METHODS).index(st.session_state.get("method", "gradcam")),
                          on_change=ui.remember("method"))
    order = [i for i, _ in cap.top_k(len(classes))]
    target_choice = c2.selectbox("Target class", order[: min(len(order), 50)], key=f"w_target_{ui.digest(data)}",
                                 format_func=lambda i: f"{classes[i]} ({float(cap.probs[0, i]):.1%})")
    target = resolve_target(int(target_choice), cap, classes)
    sign = c3.radio("Sign", SIGN_MODES, horizontal=True, key="w_sign")
    c4, c5, c6 = st.columns(3)
    opacity = c4.slider("Opacity", 0.0, 1.0, 0.65, 0.05, key="w_opacity")
    layer = None
    if "gradcam" in method:
        layers = gradcam_layers(loaded.model)
        layer = c5.selectbox("Grad-CAM layer", layers, index=len(layers) - 1, key="w_layer")
    smooth = 0
    if method not in ("occlusion", "gradcam"):
        smooth = c6.number_input("SmoothGrad samples (0 = off)", 0, 32, 0, key="w_smooth")
    st.caption(METHODS[method])
    with st.status(f"Computing {METHODS[method].split(' — ')[0]} …", expanded=False) as status:
        attr = ui.cached_attribution(sel.model_id, ui.digest(data), method, target, layer, int(smooth), loaded, data)
        status.update(label="Attribution ready", state="complete")
    view = ui.view_image(loaded, data)
    rgba = overlay(view, attr.map, sign=sign, opacity=opacity)
    a, b = st.columns(2)
    a.image(view, caption="what the model sees", width=320)
    b.image(rgba, caption=f"{method} → {classes[target]}", width=320)
    if attr.all_zero:
        st.warning("The attribution map is all zero for this target (nothing to show); try another method or class.")
    st.session_state["last_map"] = (method, classes[target], attr.map)


def intervention_tab(sel, data: bytes, cap) -> None:
    loaded = sel.loaded
    if not cap.records:
        st.info("Interventions act on SE gates; this model has none.")
        return
    names = [r.name for r in cap.records]
    kind = st.radio("Intervention", ["SE off everywhere", "SE off in one layer", "Override channels"],
                    horizontal=True, key="w_int_kind")
    if kind == "SE off everywhere":
        intervention = Intervention(off="all")
    elif kind == "SE off in one layer":
        layer = st.selectbox("Layer", names, key="w_int_layer")
        intervention = Intervention(off=(layer,))
    else:
        layer = st.selectbox("Layer", names, key="w_int_layer2")
        width = cap.records[names.index(layer)].channels
        default = [c for c in st.session_state.get("picked_channels", {}).get(layer, []) if c < width]
        chans = st.multiselect("Channels (or select bars in the SE tab)", list(range(width)), default=default,
                               key=f"w_int_ch_{layer}")
        value = st.slider("Set their gate to", 0.0, 1.0, 0.0, 0.05, key="w_int_value")
        intervention = Intervention(channels={layer: {c: value for c in chans}})
    x = preprocess([load_image(data)], loaded.meta)
    result = run_intervention(loaded.model, x, intervention)
    summary = result.summary(loaded.classes)
    m1, m2, m3 = st.columns(3)
    m1.metric("As trained", summary["before"]["class"], f"{summary['before']['prob']:.1%}", delta_color="off")
    m2.metric("With intervention", summary["after"]["class"], f"{summary['after']['prob']:.1%}", delta_color="off")
    m3.metric("Top-1 changed", "yes" if summary["top1_changed"] else "no")
    st.plotly_chart(figures.probability_change(loaded.classes[:30], result.before.probs[0][:30].tolist(),
                                               result.after.probs[0][:30].tolist()), width="stretch", key="delta")
    st.caption(f"{intervention.describe()}. The shared model is untouched: the change applies only to this run.")


def downloads_tab(cap, classes, name: str, top) -> None:
    stem = name.rsplit(".", 1)[0]
    st.markdown("Figures download as interactive HTML or PNG (rendered with a local Chromium); every chart's "
                "camera icon also saves a PNG.")
    if cap.records:
        names = [r.name for r in cap.records]
        heat = figures.excitation_heatmap(names, [r.excitation[0].tolist() for r in cap.records])
        html_download(heat, f"{stem}-excitations.html", "Excitation heat-map (HTML)")
        png_key = (name, float(cap.logits.sum()))  # this image through this model
        if st.button("Render the heat-map as PNG", key="w_png"):
            try:
                st.session_state["heat_png"] = (png_key, figures.figure_png(heat, width=1200))
            except RuntimeError as exc:
                st.warning(f"{exc}. The chart's camera icon saves a PNG from the browser instead.")
        stored = st.session_state.get("heat_png")
        if stored and stored[0] == png_key:
            st.download_button("Excitation heat-map (PNG)", stored[1], file_name=f"{stem}-excitations.png",
                               mime="image/png")
        st.download_button("Every SE record (CSV)", records_table(cap).to_csv(index=False),
                           file_name=f"{stem}-se-records.csv", mime="text/csv")
    doc = {"image": name, "predictions": top, "se_records": [r.as_dict(0) for r in cap.records]}
    st.download_button("Predictions + SE records (JSON)", json.dumps(doc, indent=2), file_name=f"{stem}.json",
                       mime="application/json")
    last = st.session_state.get("last_map")
    if last is not None:
        buf = io.BytesIO()
        np.save(buf, last[2])
        st.download_button(f"Attribution map {last[0]} → {last[1]} (.npy)", buf.getvalue(),
                           file_name=f"{stem}-{last[0]}.npy", mime="application/octet-stream")
        png = io.BytesIO()
        Image.fromarray((np.clip(last[2] / (np.abs(last[2]).max() or 1), -1, 1) * 127 + 128).astype(np.uint8)).save(
            png, "PNG")
        st.download_button("Attribution map (grey PNG)", png.getvalue(), file_name=f"{stem}-{last[0]}.png",
                           mime="image/png")


ui.guard(body)
