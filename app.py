"""sedensenet Streamlit app (minimal placeholder until the full app lands): loads the shipped demo models."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from sedensenet import CheckpointError, describe_device, load_checkpoint
from sedensenet.cli import model_summary

MODELS = Path(__file__).parent / "assets" / "models"

st.set_page_config(page_title="sedensenet", layout="wide")
st.title("sedensenet — SE channel attention, made visible")
files = sorted(MODELS.glob("*.pt"))
if not files:
    st.warning(f"No demo checkpoints found in {MODELS}. Train them with the command in README.md.")
for path in files:
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        st.error(str(exc))
        continue
    info = model_summary(loaded)
    st.success(f"Loaded **{path.name}** on {describe_device(loaded.device)}: {info['arch']}, SE = {info['se']}, "
               f"{info['parameters']:,} parameters, classes: {', '.join(info['classes'])}")
