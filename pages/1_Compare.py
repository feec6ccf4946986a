"""Compare: the same image through the SE model and its baseline, side by side, on one colour scale."""

from __future__ import annotations

import streamlit as st

from sedensenet import figures
from sedensenet.analysis.attribution import METHODS, overlay, shared_scale
from sedensenet.analysis.compare import map_agreement, prediction_agreement
from sedensenet.analysis.interventions import Intervention, run_intervention
from sedensenet.analysis.pipeline import predictions
from sedensenet.app import frame as ui
from sedensenet.data.images import load_image, preprocess

ui.setup_page("Compare", "⚖️")


def body() -> None:
    sel = ui.sidebar()
    st.title("Compare: SE model vs baseline")
    if sel is None:
        return
    if sel.twin is None:
        st.info("This checkpoint has no baseline twin to compare with. Pick the shipped demo models, or put "
                "`<name>-se.pt` and `<name>-baseline.pt` in your models folder.")
        return
    se_model, base = (sel.loaded, sel.twin) if sel.variant == "se" else (sel.twin, sel.loaded)
    se_id, base_id = (sel.model_id, sel.twin_id) if sel.variant == "se" else (sel.twin_id, sel.model_id)
    if se_model.classes != base.classes:
        st.error("The two models have different classes, so their predictions cannot be compared.")
        return
    ui.image_input()
    picked = ui.pick_image()
    if picked is None:
        return
    _name, data = picked
    classes = se_model.classes
    c1, c2 = st.columns(2)
    method = c1.selectbox("Attribution method", list(METHODS), key="w_cmp_method",
                          index=list(METHODS).index("gradcam"), format_func=lambda m: METHODS[m].split(" — ")[0])
    opacity = c2.slider("Opacity", 0.0, 1.0, 0.65, 0.05, key="w_cmp_opacity")
    d = ui.digest(data)
    with st.status("Running both models …", expanded=False) as status:
        cap_se = ui.cached_capture(se_id, d, se_model, data)
        cap_base = ui.cached_capture(base_id, d, base, data)
        target = cap_se.top_k(1)[0][0]
        attr_se = ui.cached_attribution(se_id, d, method, target, None, 0, se_model, data)
        attr_base = ui.cached_attribution(base_id, d, method, target, None, 0, base, data)
        status.update(label="Both models done", state="complete")
    scale = shared_scale([attr_se.map, attr_base.map])
    view = ui.view_image(se_model, data)
    agree = prediction_agreement(cap_se.probs[0], cap_base.probs[0], classes)
    maps = map_agreement(attr_se.map, attr_base.map)
    m = st.columns(4)
    m[0].metric("Top-1 agree", "yes" if agree["top1_agree"] else "no")
    m[1].metric("JS divergence", f"{agree['js_divergence']:.3f}", help="0 = identical predictions, 1 = disjoint")
    m[2].metric("Map rank correlation", f"{maps['spearman']:.2f}", help="Spearman of |attribution|")
    m[3].metric("Top-10 % region IoU", f"{maps['top10_iou']:.2f}")
    left, right = st.columns(2)
    for col, title, cap, attr in ((left, "SE model", cap_se, attr_se), (right, "Baseline (no SE)", cap_base,
                                                                         attr_base)):
        with col:
            st.subheader(title)
            st.plotly_chart(figures.prediction_bars(predictions(cap, classes, min(5, len(classes)))),
                            width="stretch", key=f"pred_{title}")
            st.image(overlay(view, attr.map, opacity=opacity, scale=scale),
                     caption=f"{method} → {classes[target]} (shared colour scale)", width=320)
    st.subheader("What SE changed")
    x = preprocess([load_image(data)], se_model.meta)
    off = run_intervention(se_model.model, x, Intervention(off="all")).summary(classes)
    verdict = ("the SE blocks decide this image" if off["top1_changed"]
               else "the prediction survives without the gates, only the confidence moves")
    st.markdown(
        f"- The SE model says **{agree['top1_se']}**, the baseline **{agree['top1_baseline']}** "
        f"(total variation between their probabilities: {agree['total_variation']:.3f}).\n"
        f"- Switching every SE gate of the SE model to 1 (same weights, no channel attention) moves its answer "
        f"from **{off['before']['class']}** ({off['before']['prob']:.1%}) to **{off['after']['class']}** "
        f"({off['after']['prob']:.1%}): {verdict}.")


ui.guard(body)
