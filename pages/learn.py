"""Learn: squeeze → excitation → scale, step by step, with live numbers from the current image and model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sedensenet import figures
from sedensenet.analysis.attribution import METHODS
from sedensenet.analysis.flags import NEAR_CONSTANT_NOTE, near_constant_layers
from sedensenet.app import loads, state, views
from sedensenet.app.escape import escape_markdown


def explain_methods() -> None:
    st.subheader("What each attribution method shows")
    st.dataframe(pd.DataFrame([{"method": m.label, "what it shows": m.description}
                               for m in METHODS.values()]), hide_index=True)
    st.markdown("SE shows *which channels* matter for an image; attribution methods show *where* in the image the "
                "evidence is. Compare both for the SE model and its baseline on the Compare page; check a map's "
                "honesty with the model-randomisation test (maps of a scrambled model should look different).")


sel = state.selection()
loaded = sel.loaded
st.title("Learn: how a Squeeze-and-Excitation block works")
pic = views.image_picker(sel, upload=False)
if pic is None:
    st.stop()
if loaded.config.se == "none":
    st.info("The baseline has no SE blocks; switch to the SE model in the sidebar to follow the walkthrough.")
    explain_methods()
    st.stop()
cap = loads.capture(sel.model_id, pic.digest, loaded, pic.data)
names = [r.name for r in cap.records]
c1, c2 = st.columns(2)
layer_idx = c1.selectbox("SE layer", range(len(names)), format_func=lambda i: f"{cap.records[i].label} · {names[i]}",
                         **state.keep("learn_layer", 0, range(len(names))))
rec = cap.records[layer_idx]
gates = rec.excitation[0]
channel = int(c2.number_input(f"Channel (0–{rec.channels - 1}; default: the most suppressed)", 0, rec.channels - 1,
                              int(gates.argmin()), key=f"w_learn_ch_{layer_idx}"))
step = loads.walkthrough(sel.model_id, pic.digest, layer_idx, channel, loaded, pic.data)
u = step.before
st.markdown(f"""
The block sees the feature map **U** at *{rec.label}* (`{rec.name}`): {rec.channels} channels of
{u.shape[0]}×{u.shape[1]} values for *{escape_markdown(pic.name)}*. Follow channel **{channel}**:

1. **Squeeze** — average each channel over all positions: z<sub>{channel}</sub> = mean(U<sub>{channel}</sub>) =
   **{step.squeeze:.4f}**. The whole channel becomes one number describing "how much of this feature is in the
   image".
2. **Excitation** — a tiny two-layer network looks at *all* {rec.channels} squeezed values together:
   s = σ(W₂ · ReLU(W₁ · z)). Its output for this channel is the gate s<sub>{channel}</sub> = **{step.gate:.4f}**
   (0 silences the channel, 1 passes it unchanged).
3. **Scale** — every value of the channel is multiplied by its gate: Ũ<sub>{channel}</sub> = {step.gate:.3f} ×
   U<sub>{channel}</sub>. The next layer sees the re-weighted channels.
""", unsafe_allow_html=True)
vmax = float(abs(u).max()) or 1.0
a, b, c = st.columns(3)
a.plotly_chart(loads.styled(figures.feature_map(u.tolist(), f"U{channel}: before SE", vmax), sel.presenter),
               width="stretch", key="u")
with b:
    st.metric("squeeze z", f"{step.squeeze:.4f}")
    st.metric("gate s", f"{step.gate:.4f}", f"{(step.gate - 1) * 100:+.1f} % on this channel", delta_color="off")
    st.caption(f"This image's gates in this layer: min {float(gates.min()):.3f}, mean {float(gates.mean()):.3f}, "
               f"max {float(gates.max()):.3f}")
    if near_constant_layers([gates]):
        st.warning(f"{figures.FLAG} {NEAR_CONSTANT_NOTE}.")
c.plotly_chart(loads.styled(figures.feature_map(step.after.tolist(), f"s × U{channel}: after SE", vmax),
                            sel.presenter), width="stretch", key="su")
if step.hidden is not None:
    shown = ", ".join(f"{v:.3f}" for v in step.hidden[:12]) + (" …" if len(step.hidden) > 12 else "")
    st.caption(f"Inside the excitation: {rec.channels} squeezed values → {len(step.hidden)} hidden units "
               f"(ReLU: {shown}) → {rec.channels} sigmoid gates. The bottleneck makes the gates depend on each other.")
st.plotly_chart(loads.styled(figures.channel_bars(gates.tolist(), rec.squeeze[0].tolist(),
                                                  figures.layer_labels(names)[layer_idx], [channel]), sel.presenter),
                width="stretch", key="learn_bars")
explain_methods()
