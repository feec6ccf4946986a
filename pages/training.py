"""Training: train/validation curves from the checkpoints' history, SE and baseline overlaid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from sedensenet import figures
from sedensenet.app import state
from sedensenet.app.escape import escape_markdown
from sedensenet.training.history import run_history

sel = state.selection()
st.title("Training curves")
runs, histories = {}, {}
other = "baseline" if sel.variant == "se" else "se"
for variant, loaded in ((sel.variant, sel.loaded), (other, sel.twin)):
    source = sel.family.source(variant) or ""
    path = Path(source) if loaded is not None and not source.startswith("upload:") else None
    history = run_history(loaded.meta, path) if loaded is not None else None
    if history is not None:
        key = f"{'SE' if variant == 'se' else 'baseline'} (se={loaded.config.se})"
        runs[key], histories[key] = history.epochs, history
if not runs:
    st.info("This checkpoint has no training history (it was not trained with `sedensenet train`).")
    st.stop()
st.plotly_chart(figures.training_curves(runs), width="stretch", key="curves")
st.caption("Dashed: training; solid: validation. Both models of a pair saw identical batches in the same order.")
best = pd.DataFrame([{"model": k, "epochs": len(h), "best epoch (weights in the file)": histories[k].best_epoch,
                      "best val acc": max((r["val_acc"] for r in h if "val_acc" in r), default=None),
                      "final val acc": h[-1].get("val_acc"), "final train loss": h[-1].get("train_loss"),
                      "minutes": sum(r.get("seconds", 0) for r in h) / 60}
                     for k, h in runs.items()])
st.dataframe(best, hide_index=True)
st.caption("The checkpoint holds the weights of its best epoch (highest validation accuracy); the curves show "
           "every epoch trained.")
for key, history in histories.items():
    if history.note():
        st.info(f"{key}: {history.note()}.")
    elif history.source != "checkpoint":
        st.caption(f"{key}: epochs after the best read from {history.source} (the same run).")
args = sel.loaded.meta.train_args
if args:
    st.subheader("Hyper-parameters")
    st.dataframe(pd.DataFrame({"setting": list(args), "value": [str(v) for v in args.values()]}),
                 hide_index=True)
    if sel.loaded.meta.dataset:
        st.caption(f"Data: {escape_markdown(sel.loaded.meta.dataset)}")

