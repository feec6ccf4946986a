"""Model: architecture, parameters and FLOPs, what SE adds, where SE sits, how the checkpoint was loaded."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sedensenet import figures
from sedensenet.app import loads, state
from sedensenet.app.escape import escape_markdown
from sedensenet.models.summary import model_stages, se_placement_text, se_site_table, summarise

sel = state.selection()
st.title("Model")
loaded = sel.loaded
info = summarise(loaded)
cfg = loaded.config
m = st.columns(4)
m[0].metric("Parameters", f"{info.parameters:,}")
m[1].metric("Added by SE", f"{info.se_parameters:,}", f"{info.se_share:.2%}", delta_color="off")
m[2].metric(f"FLOPs at {loaded.input_size}²", f"{loads.flops(sel.model_id, loaded) / 1e9:.3f} G")
m[3].metric("SE layers", info.se_layers)
stages, marks = model_stages(cfg)
st.plotly_chart(figures.architecture_diagram(stages, marks), width="stretch", key="arch")
st.markdown(f"**SE placement** (`{cfg.se}`): {se_placement_text(cfg)}")
if cfg.sites:
    st.dataframe(pd.DataFrame(se_site_table(cfg)), hide_index=True)
st.subheader("Architecture")
st.dataframe(pd.DataFrame({"setting": list(cfg.to_dict()), "value": [str(v) for v in cfg.to_dict().values()]}),
             hide_index=True)
st.subheader("How this checkpoint was loaded")
meta = loaded.meta
st.markdown(f"- format: `{escape_markdown(meta.format)}` (source: {escape_markdown(meta.source)}), "
            f"device: {loaded.device}\n- input {loaded.input_size}², mean {list(meta.mean)}, std {list(meta.std)}")
if meta.assumed:
    st.warning("Assumed defaults (the file did not say):\n\n" + "\n".join(f"- {escape_markdown(a)}"
                                                                         for a in meta.assumed))
if meta.warnings:
    st.warning("Metadata problems (ignored; the model itself is fine):\n\n" + "\n".join(
        f"- {escape_markdown(w)}" for w in meta.warnings))

