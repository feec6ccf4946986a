"""Compare: the same image through the SE model and its baseline, side by side, on one colour scale."""

from __future__ import annotations

import streamlit as st

from sedensenet.analysis.attribution import shared_scale
from sedensenet.analysis.compare import map_agreement, prediction_agreement
from sedensenet.analysis.interventions import Intervention
from sedensenet.app import loads, state, views

sel = state.selection()
st.title("Compare: SE model vs baseline")
if sel.pair is None:
    st.info("This checkpoint has no baseline twin to compare with. Pick a shipped pair, or put "
            "`<name>-se.pt` and `<name>-baseline.pt` in your models folder.")
    st.stop()
(se_id, se_model), (base_id, base) = sel.pair
if se_model.classes != base.classes:
    st.error("The two models have different classes, so their predictions cannot be compared.")
    st.stop()
pic = views.image_picker(sel)
if pic is None:
    st.stop()
classes = se_model.classes
with st.spinner("Running both models …"):
    cap_se = loads.capture(se_id, pic.digest, se_model, pic.data)
    cap_base = loads.capture(base_id, pic.digest, base, pic.data)
# Both maps explain the same class (top-1 = the SE model's prediction), on one colour scale.
choices = views.attribution_controls(sel, cap_se, prefix="cmp_", model_name="SE model")
attrs = views.attribution_results([(se_id, se_model), (base_id, base)], pic, choices, button_key="cmp_compute")
attr_se, attr_base = attrs or (None, None)
agree = prediction_agreement(cap_se.probs[0], cap_base.probs[0], classes)
m = st.columns(4)
m[0].metric("Top-1 agree", "yes" if agree["top1_agree"] else "no")
m[1].metric("JS divergence", f"{agree['js_divergence']:.3f}", help="0 = identical predictions, 1 = disjoint")
scale = None
if attr_se is not None and attr_base is not None:
    if attr_se.map.shape == attr_base.map.shape:
        maps = map_agreement(attr_se.map, attr_base.map)
        m[2].metric("Map rank correlation", f"{maps['spearman']:.2f}", help="Spearman of |attribution|")
        m[3].metric("Top-10 % region IoU", f"{maps['top10_iou']:.2f}")
    else:
        m[2].caption(f"The two models see different input sizes ({se_model.input_size}² vs {base.input_size}²): "
                     "their maps are compared by eye only.")
    scale = shared_scale([attr_se.map, attr_base.map], choices["sign"])
left, right = st.columns(2)
for col, title, mid, model, cap, attr in ((left, "SE model", se_id, se_model, cap_se, attr_se),
                                          (right, "Baseline (no SE)", base_id, base, cap_base, attr_base)):
    with col:
        views.prediction_panel(mid, model, pic, cap, presenter=sel.presenter, key=f"pred_{title}", title=title)
        if attr is not None:
            views.overlay_chart(sel, mid, model, pic, attr, choices, key=f"overlay_{title}", scale=scale,
                                title=f"{views.method_label(choices['method'])} → {classes[choices['target']]}")
if scale is not None:
    st.caption("Both overlays use one colour scale, so their intensities compare.")
st.subheader("What SE changed")
off = loads.intervention(se_id, pic.digest, Intervention(off="all"), se_model, pic.data).summary(classes)
verdict = ("the SE blocks decide this image" if off["top1_changed"]
           else "the prediction survives without the gates, only the confidence moves")
st.markdown(
    f"- The SE model says **{agree['top1_se']}**, the baseline **{agree['top1_baseline']}** "
    f"(total variation between their probabilities: {agree['total_variation']:.3f}).\n"
    f"- Switching every SE gate of the SE model to 1 (same weights, no channel attention) moves its answer "
    f"from **{off['before']['class']}** ({off['before']['prob']:.1%}) to **{off['after']['class']}** "
    f"({off['after']['prob']:.1%}): {verdict}.")
