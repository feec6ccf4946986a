"""Explore: prediction, SE excitations, attribution and interventions for one image (layout only).

Only the open tab runs: a change in one tab never recomputes another's results.
"""

from __future__ import annotations

import json

import streamlit as st

from sedensenet import figures
from sedensenet.analysis.interventions import Intervention
from sedensenet.analysis.pipeline import map_npy, map_png, predictions, records_csv
from sedensenet.app import loads, state, views
from sedensenet.app.escape import escape_markdown

TABS = ["SE excitations", "Attribution", "Interventions", "Downloads"]

sel = state.selection()
loaded = sel.loaded
st.title("Explore: what do the SE blocks do with your image?")
pic = views.image_picker(sel)
if pic is None:
    st.stop()
with st.spinner("Running the model …"):
    cap = loads.capture(sel.model_id, pic.digest, loaded, pic.data)
views.prediction_panel(sel.model_id, loaded, pic, cap, presenter=sel.presenter)
names = [r.name for r in cap.records]
labels = TABS if not sel.presenter else TABS[:3]  # presenter mode: no downloads; a callback = only the open tab runs
tabs = st.tabs(labels, **state.keep("view", TABS[0], labels))

with tabs[0]:
    if tabs[0].open and not cap.records:
        st.info("This model has no SE layers (it is the baseline). Switch to the SE model in the sidebar to see "
                "its channel gates — the image and settings stay.")
    elif tabs[0].open:
        figs = loads.se_figures(sel.model_id, pic.digest, sel.presenter, cap)
        st.caption("Each row is one SE layer (forward order), each cell one channel's gate: 1 = passed unchanged, "
                   "0 = silenced. Hover for values.")
        st.plotly_chart(figs["heat"], width="stretch", key="heat")
        if figs["note"]:
            st.caption(figs["note"])
        c1, c2 = st.columns(2)
        with c1:
            st.markdown("**One layer's channels** (select bars to pick channels for an intervention)")
            i = st.selectbox("SE layer", range(len(names)), format_func=lambda j: views.layer_label(names[j]),
                             **state.keep("bar_layer", 0, range(len(names))))
            chosen = st.session_state.get("picked_channels", {}).get(names[i], [])
            event = st.plotly_chart(
                loads.channel_figure(sel.model_id, pic.digest, sel.presenter, i, tuple(chosen),
                                     figures.layer_labels(names)[i], cap),
                width="stretch", key="bars", on_select="rerun", selection_mode=("points", "box"))
            points = getattr(getattr(event, "selection", None), "points", None) or []
            if points:
                picked = sorted({int(p["x"]) for p in points})
                st.session_state.setdefault("picked_channels", {})[names[i]] = picked
                st.caption(f"Picked channels {picked} of {views.layer_label(names[i])} — see the Interventions tab.")
        with c2:
            st.markdown("**Squeeze vs excitation** (every channel of every layer; colour = depth)")
            st.plotly_chart(figs["scatter"], width="stretch", key="scatter")
        st.markdown("**Depth summary**: how strongly each SE layer gates, from input to output")
        st.plotly_chart(figs["depth"], width="stretch", key="depth")

with tabs[1]:
    if tabs[1].open:
        choices = views.attribution_controls(sel, cap)
        attrs = views.attribution_results([(sel.model_id, loaded)], pic, choices, button_key="compute")
        if attrs is not None:
            attr = attrs[0]
            title = f"{views.method_label(choices['method'])} → {loaded.classes[choices['target']]}"
            views.overlay_chart(sel, sel.model_id, loaded, pic, attr, choices, key="overlay", title=title)
            if attr.all_zero:
                st.warning("The attribution map is all zero for this target (nothing to show); try another method "
                           "or class.")
            st.session_state["last_map"] = (choices["method"], loaded.classes[choices["target"]], attr.map)

with tabs[2]:
    if tabs[2].open and not cap.records:
        st.info("Interventions act on SE gates; this model has none.")
    elif tabs[2].open:
        kinds = ["SE off everywhere", "SE off in one layer", "Override channels"]
        kind = st.radio("Intervention", kinds, horizontal=True, **state.keep("int_kind", kinds[0], kinds))
        if kind == "SE off everywhere":
            spec = Intervention(off="all")
        elif kind == "SE off in one layer":
            layer = st.selectbox("Layer", names, format_func=views.layer_label,
                                 **state.keep("int_layer", names[0], names))
            spec = Intervention(off=(layer,))
        else:
            layer = st.selectbox("Layer", names, format_func=views.layer_label,
                                 **state.keep("int_layer", names[0], names))
            width = cap.records[names.index(layer)].channels
            default = [c for c in st.session_state.get("picked_channels", {}).get(layer, []) if c < width]
            chans = st.multiselect("Channels (or select bars in the SE tab)", list(range(width)), default=default,
                                   key=f"w_int_ch_{layer}")
            value = st.slider("Set their gate to", 0.0, 1.0, 0.0, 0.05, key="w_int_value")
            spec = Intervention(channels={layer: dict.fromkeys(chans, value)})
        result = loads.intervention(sel.model_id, pic.digest, spec, loaded, pic.data)
        summary = result.summary(loaded.classes)
        m1, m2, m3 = st.columns(3)
        m1.metric(f"As trained: {summary['before']['class']}", f"{summary['before']['prob']:.1%}",
                  help="top-1 class and its probability")
        m2.metric(f"With intervention: {summary['after']['class']}", f"{summary['after']['prob']:.1%}",
                  help="top-1 class and its probability with the gates changed")
        m3.metric("Top-1 changed", "yes" if summary["top1_changed"] else "no")
        st.plotly_chart(loads.styled(figures.probability_change(
            loaded.classes[:30], result.before.probs[0][:30].tolist(), result.after.probs[0][:30].tolist()),
            sel.presenter), width="stretch", key="delta")
        if spec.empty:
            st.caption("No channels picked yet: choose channels above (or select bars in the SE tab); until then "
                       "the prediction is unchanged.")
        else:
            st.caption(f"{spec.describe()}. The shared model is untouched: the change applies only to this run.")
        st.caption("SE off = every gate of that layer set to 1: the channels pass unchanged, as if the SE block were "
                   "not there (same weights otherwise). A gate of 0 silences a channel.")

if not sel.presenter:
    with tabs[3]:
        if tabs[3].open:
            stem = pic.name.rsplit(".", 1)[0]
            st.markdown("Figures download as interactive HTML or PNG (rendered with a local Chromium); every chart's "
                        "camera icon also saves a PNG.")
            top = predictions(cap, loaded.classes, k=min(5, len(loaded.classes)))
            if cap.records:
                heat = loads.se_figures(sel.model_id, pic.digest, False, cap)["heat"]
                st.download_button("Excitation heat-map (HTML)", heat.to_html(include_plotlyjs="cdn"),
                                   file_name=f"{stem}-excitations.html", mime="text/html")
                png_key = (sel.model_id, pic.digest)
                if problem := figures.png_export_problem():
                    st.caption(problem)
                if st.button("Render the heat-map as PNG", key="w_png"):
                    try:
                        st.session_state["heat_png"] = (png_key, figures.figure_png(heat, width=1200))
                    except RuntimeError as exc:
                        st.warning(f"{escape_markdown(str(exc))}. The chart's camera icon saves a PNG from the "
                                   "browser instead.")
                stored = st.session_state.get("heat_png")
                if stored and stored[0] == png_key:
                    st.download_button("Excitation heat-map (PNG)", stored[1], file_name=f"{stem}-excitations.png",
                                       mime="image/png")
                st.download_button("Every SE record (CSV)", records_csv(cap), file_name=f"{stem}-se-records.csv",
                                   mime="text/csv")
            report_key = (sel.model_id, pic.digest)
            if st.button("Build the HTML report (prediction, SE, attributions, SE vs baseline)", key="w_report"):
                (se_id, se_model), (base_id, base) = sel.pair or ((sel.model_id, loaded), (None, None))
                with st.spinner("Building the report …"):
                    st.session_state["report"] = (report_key, loads.report_html(
                        se_id, base_id, pic.digest, pic.name, se_model, base, pic.data))
            stored = st.session_state.get("report")
            if stored and stored[0] == report_key:
                st.download_button("HTML report (one self-contained file)", stored[1],
                                   file_name=f"{stem}-report.html", mime="text/html")
            doc = {"image": pic.name, "predictions": top, "se_records": [r.as_dict(0) for r in cap.records]}
            st.download_button("Predictions + SE records (JSON)", json.dumps(doc, indent=2),
                               file_name=f"{stem}.json", mime="application/json")
            last = st.session_state.get("last_map")
            if last is not None:
                st.download_button(f"Attribution map {views.method_label(last[0])} → {last[1]} (.npy)",
                                   map_npy(last[2]), file_name=f"{stem}-{last[0]}.npy",
                                   mime="application/octet-stream")
                st.download_button("Attribution map (grey PNG)", map_png(last[2]),
                                   file_name=f"{stem}-{last[0]}.png", mime="image/png")
