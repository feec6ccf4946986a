"""Class statistics: the SENet paper's "role of excitation" figure for this model and a labelled dataset."""

from __future__ import annotations

import streamlit as st
import torch

from sedensenet import figures
from sedensenet.analysis.statistics import ExcitationStats, excitation_stats
from sedensenet.app import frame as ui
from sedensenet.data.images import DemoShapes, images_from_zip, load_image, preprocess

ui.setup_page("Class statistics", "📊")
FINDING = """
**What to look for** (Hu et al., *Squeeze-and-Excitation Networks*, §7): in **early** SE layers the mean
excitation is nearly the same for every class — low-level features matter to all of them. With **depth** the
per-class curves separate: the gates become **class-specific**, each class turning up its own channels. In the
last layers of ImageNet models the gates saturate near 1 and SE matters less. The specificity curve below
measures the separation (between-class spread of the mean excitation) at every depth, for *your* model and data.
"""


def _progress(batches: list, bar) -> list:
    for i, item in enumerate(batches):
        bar.progress((i + 1) / len(batches), text=f"batch {i + 1} of {len(batches)}")
        yield item


def _batches(images: list, labels: list[int], meta: dict, size: int = 32) -> list:
    out = []
    for i in range(0, len(images), size):
        out.append((preprocess(images[i:i + size], meta), torch.tensor(labels[i:i + size])))
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def demo_stats(model_id: str, per_class: int, seed: int, _loaded) -> ExcitationStats:
    ds = DemoShapes(per_class * len(DemoShapes.classes), seed=seed)
    items = [ds[i] for i in range(len(ds))]
    batches = _batches([im for im, _ in items], [y for _, y in items], _loaded.meta)
    bar = st.progress(0.0, text="computing class-wise excitations …")
    stats = excitation_stats(_loaded.model, _progress(batches, bar), _loaded.classes, progress=False)
    bar.empty()
    return stats


@st.cache_data(max_entries=4, show_spinner=False)
def zip_stats(model_id: str, zip_digest: str, _loaded, _data: bytes) -> ExcitationStats:
    entries = images_from_zip(_data)
    unknown = sorted({c for c, _, _ in entries} - set(_loaded.classes))
    if unknown:
        raise ValueError(f"zip folders {unknown[:10]} are not classes of this model ({', '.join(_loaded.classes[:10])}"
                         " …); name the folders after the model's classes")
    images = [load_image(b, name=f"{c}/{n}") for c, n, b in entries]
    labels = [_loaded.classes.index(c) for c, _, _ in entries]
    bar = st.progress(0.0, text="computing class-wise excitations …")
    stats = excitation_stats(_loaded.model, _progress(_batches(images, labels, _loaded.meta), bar),
                             _loaded.classes, progress=False)
    bar.empty()
    return stats


def body() -> None:
    sel = ui.sidebar()
    st.title("Class statistics: does SE become class-specific with depth?")
    if sel is None:
        return
    loaded = sel.loaded
    if loaded.config.se == "none":
        st.info("The baseline has no SE gates. Switch to the SE model in the sidebar.")
        return
    st.markdown(FINDING)
    source = st.radio("Data", ["Demo shapes (generated)", "Upload a zip of <class>/<image> folders"],
                      horizontal=True, key="w_stats_source")
    if source.startswith("Demo"):
        if loaded.classes != list(DemoShapes.classes):
            st.warning("This model was not trained on the demo shapes; upload a zip of your own labelled images.")
            return
        per_class = st.slider("Images per class", 5, 100, 25, 5, key="w_stats_n")
        stats = demo_stats(sel.model_id, per_class, 4242, loaded)
    else:
        up = st.file_uploader("Zip with one folder per class (folder names = the model's classes)", type=["zip"],
                              key="w_stats_zip")
        if up is None:
            return
        data = up.getvalue()
        stats = zip_stats(sel.model_id, ui.digest(data), loaded, data)
    present = [c for c, n in zip(stats.classes, stats.counts, strict=True) if n > 0]
    st.caption(f"{int(stats.counts.sum())} images, {len(present)} classes, {len(stats.layers)} SE layers.")
    names = [layer.name for layer in stats.layers]
    st.subheader("Class-specificity by depth")
    st.plotly_chart(figures.specificity_by_depth(names, [layer.specificity for layer in stats.layers]),
                    width="stretch", key="spec")
    st.subheader("Mean excitation per class at several depths")
    n = len(stats.layers)
    picks = sorted({0, n // 3, (2 * n) // 3, n - 1})
    chosen = st.multiselect("Layers", range(n), default=picks, format_func=lambda i: names[i], key="w_stats_layers")
    keep = [i for i, c in enumerate(stats.classes) if stats.counts[i] > 0]
    cols = st.columns(2)
    for j, i in enumerate(chosen):
        layer = stats.layers[i]
        with cols[j % 2]:
            st.plotly_chart(figures.class_excitation([stats.classes[k] for k in keep], layer.mean[keep],
                                                     f"{figures.layer_labels([layer.name])[0]} "
                                                     f"(specificity {layer.specificity:.3f})"),
                            width="stretch", key=f"cls_{i}")


ui.guard(body)
