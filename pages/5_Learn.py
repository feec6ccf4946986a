"""Learn: squeeze → excitation → scale, step by step, with live numbers from the current image and model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from sedensenet import figures
from sedensenet.analysis.attribution import METHODS
from sedensenet.analysis.capture import find_se_modules, se_input
from sedensenet.app import frame as ui
from sedensenet.data.images import load_image, preprocess

ui.setup_page("Learn", "🎓")


def body() -> None:
    sel = ui.sidebar()
    st.title("Learn: how a Squeeze-and-Excitation block works")
    if sel is None:
        return
    loaded = sel.loaded
    picked = ui.pick_image()
    if picked is None:
        return
    name, data = picked
    if loaded.config.se == "none":
        st.info("The baseline has no SE blocks; switch to the SE model in the sidebar to follow the walkthrough.")
        explain_methods()
        return
    cap = ui.cached_capture(sel.model_id, ui.digest(data), loaded, data)
    names = [r.name for r in cap.records]
    c1, c2 = st.columns(2)
    layer_idx = c1.selectbox("SE layer", range(len(names)), format_func=lambda i: names[i], key="w_learn_layer")
    rec = cap.records[layer_idx]
    gates = rec.excitation[0]
    default = int(gates.argmin())
    channel = c2.number_input(f"Channel (0–{rec.channels - 1}; default: the most suppressed)", 0, rec.channels - 1,
                              default, key=f"w_learn_ch_{layer_idx}")
    x = preprocess([load_image(data)], loaded.meta)
    u = se_input(loaded.model, x, rec.name)[0, channel].numpy()
    z, s = float(rec.squeeze[0, channel]), float(gates[channel])
    st.markdown(f"""
The block sees the feature map **U** of layer `{rec.name}`: {rec.channels} channels of
{u.shape[0]}×{u.shape[1]} values for *{name}*. Follow channel **{channel}**:

1. **Squeeze** — average each channel over all positions: z<sub>{channel}</sub> = mean(U<sub>{channel}</sub>) =
   **{z:.4f}**. The whole channel becomes one number describing "how much of this feature is in the image".
2. **Excitation** — a tiny two-layer network looks at *all* {rec.channels} squeezed values together:
   s = σ(W₂ · ReLU(W₁ · z)). Its output for this channel is the gate s<sub>{channel}</sub> = **{s:.4f}**
   (0 silences the channel, 1 passes it unchanged).
3. **Scale** — every value of the channel is multiplied by its gate: Ũ<sub>{channel}</sub> = {s:.3f} ×
   U<sub>{channel}</sub>. The next layer sees the re-weighted channels.
""", unsafe_allow_html=True)
    vmax = float(np.abs(u).max()) or 1.0
    a, b, c = st.columns(3)
    a.plotly_chart(figures.feature_map(u.tolist(), f"U{channel}: before SE", vmax), width="stretch", key="u")
    with b:
        st.metric("squeeze z", f"{z:.4f}")
        st.metric("gate s", f"{s:.4f}", f"{(s - 1) * 100:+.1f} % on this channel", delta_color="off")
        st.caption(f"This image's gates in this layer: min {float(gates.min()):.3f}, mean {float(gates.mean()):.3f}, "
                   f"max {float(gates.max()):.3f}")
    c.plotly_chart(figures.feature_map((u * s).tolist(), f"s × U{channel}: after SE", vmax), width="stretch",
                   key="su")
    module = {m.name: m for m in find_se_modules(loaded.model)}[rec.name].module
    fc = getattr(module, "fc", None)
    if fc is not None and isinstance(fc, torch.nn.Sequential) and len(fc) >= 3:
        with torch.no_grad():
            hidden = torch.relu(fc[0](rec.squeeze[:1].to(next(module.parameters()).device)))[0].cpu()
        st.caption(f"Inside the excitation: {rec.channels} squeezed values → {hidden.numel()} hidden units "
                   f"(ReLU: {', '.join(f'{v:.3f}' for v in hidden[:12].tolist())}{' …' if hidden.numel() > 12 else ''})"
                   f" → {rec.channels} sigmoid gates. The bottleneck makes the gates depend on each other.")
    st.plotly_chart(figures.channel_bars(gates.tolist(), rec.squeeze[0].tolist(), names[layer_idx], [channel]),
                    width="stretch", key="learn_bars")
    explain_methods()


def explain_methods() -> None:
    st.subheader("What each attribution method shows")
    st.dataframe(pd.DataFrame([{"method": k, "what it shows": v.split(" — ")[1]} for k, v in METHODS.items()]),
                 hide_index=True)
    st.markdown("SE shows *which channels* matter for an image; attribution methods show *where* in the image the "
                "evidence is. Compare both for the SE model and its baseline on the Compare page; check a map's "
                "honesty with the model-randomisation test (maps of a scrambled model should look different).")


ui.guard(body)
