"""Training: train/validation curves from the checkpoints' history, SE and baseline overlaid."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sedensenet import figures
from sedensenet.app import state

sel = state.selection()
st.title("Training curves")
runs = {}
for label, loaded in (("SE" if sel.variant == "se" else "baseline", sel.loaded),
                      ("baseline" if sel.variant == "se" else "SE", sel.twin)):
    if loaded is not None and loaded.meta.get("history"):
        runs[f"{label} (se={loaded.config.se})"] = loaded.meta["history"]
if not runs:
    st.info("This checkpoint has no training history (it was not trained with `sedensenet train`).")
    st.stop()
st.plotly_chart(figures.training_curves(runs), width="stretch", key="curves")
st.caption("Dashed: training; solid: validation. Both models of a pair saw identical batches in the same order.")
best = pd.DataFrame([{"model": k, "epochs": len(h), "best val acc": max(r["val_acc"] for r in h),
                      "final val acc": h[-1]["val_acc"], "final train loss": h[-1]["train_loss"],
                      "minutes": sum(r.get("seconds", 0) for r in h) / 60} for k, h in runs.items()])
st.dataframe(best, hide_index=True)
args = sel.loaded.meta.get("train_args")
if args:
    st.subheader("Hyper-parameters")
    st.dataframe(pd.DataFrame({"setting": list(args), "value": [str(v) for v in args.values()]}),
                 hide_index=True)
    if sel.loaded.meta.get("dataset"):
        st.caption(f"Data: {sel.loaded.meta['dataset']}")

