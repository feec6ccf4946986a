"""Class statistics: the SENet paper's "role of excitation" figure for this model and a labelled dataset."""

from __future__ import annotations

import streamlit as st

from sedensenet import figures
from sedensenet.analysis.class_stats import mismatch, stored_statistics
from sedensenet.analysis.stats_file import load_stats, summary_line
from sedensenet.app import loads, state, views
from sedensenet.app.escape import escape_markdown
from sedensenet.data.images import DemoShapes

FINDING = """
**What to look for** (Hu et al., *Squeeze-and-Excitation Networks*, §7): in **early** SE layers the mean
excitation is nearly the same for every class — low-level features matter to all of them. With **depth** the
per-class curves separate: the gates become **class-specific**, each class turning up its own channels. In the
last layers of ImageNet models the gates saturate near 1 and SE matters less. The specificity curve below
measures the separation (between-class spread of the mean excitation) at every depth, for *your* model and data.
"""

sel = state.selection()
loaded = sel.loaded
st.title("Class statistics: does SE become class-specific with depth?")
if loaded.config.se == "none":
    st.info("The baseline has no SE gates. Switch to the SE model in the sidebar.")
    st.stop()
st.markdown(FINDING)
stored, problem = stored_statistics(loaded)
if problem:
    st.warning(f"The checkpoint's stored statistics cannot be shown: {escape_markdown(problem)}")
STORED, DEMO, ZIP, FILE = ("Stored with the checkpoint", "Demo shapes (generated)",
                           "Upload a zip of <class>/<image> folders", "Open a stats file (.json/.npz)")
sources = ([STORED] if stored is not None else []) + [DEMO, ZIP, FILE]
# its own key when stored statistics exist, so a checkpoint that carries them opens on them
source = st.radio("Data", sources, horizontal=True,
                  **state.keep("stats_source_stored" if stored is not None else "stats_source", sources[0], sources))
if source == STORED:
    stats = stored
elif source == DEMO:
    if loaded.classes != list(DemoShapes.classes):
        st.warning("This model was not trained on the demo shapes; upload a zip of your own labelled images.")
        st.stop()
    per_class = st.slider("Images per class", 5, 100, step=5, **state.keep("stats_n", 25))
    stats = loads.demo_stats(sel.model_id, per_class, 4242, loaded)
elif source == ZIP:
    up = st.file_uploader("Zip with one folder per class (folder names = the model's classes)", type=["zip"],
                          key="w_stats_zip")
    if up is None:
        st.stop()
    data = up.getvalue()
    stats = loads.zip_stats(sel.model_id, state.digest(data), loaded, data)
else:
    up = st.file_uploader("Stats file written by `sedensenet stats … --out stats.json|.npz`", type=["json", "npz"],
                          key="w_stats_file")
    if up is None:
        st.stop()
    stats = load_stats(up.getvalue(), name=up.name)
st.caption(f"{summary_line(stats)}.")
if stats.description:
    st.text(f"Computed on: {stats.description}")
for issue in mismatch(stats, loaded):
    st.warning(f"These statistics may belong to another model: {escape_markdown(issue)}.")
names = [layer.name for layer in stats.layers]
st.subheader("Class-specificity by depth")
st.plotly_chart(loads.styled(figures.specificity_by_depth(names, [layer.specificity for layer in stats.layers]),
                             sel.presenter), width="stretch", key="spec")
st.subheader("Mean excitation per class at several depths")
n = len(stats.layers)
picks = sorted({0, n // 3, (2 * n) // 3, n - 1})
chosen = st.multiselect("Layers", range(n), default=picks, format_func=lambda i: views.layer_label(names[i]),
                        key=f"w_stats_layers_{n}")
keep = [i for i, c in enumerate(stats.classes) if stats.counts[i] > 0]
cols = st.columns(2)
for j, i in enumerate(chosen):
    layer = stats.layers[i]
    with cols[j % 2]:
        st.plotly_chart(loads.styled(figures.class_excitation(
            [stats.classes[k] for k in keep], layer.mean[keep],
            f"{figures.layer_labels([layer.name])[0]} (specificity {layer.specificity:.3f})"), sel.presenter),
            width="stretch", key=f"cls_{i}")
