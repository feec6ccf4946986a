"""Share links: the URL's query string carries the model, variant, image and main controls.

A teacher copies the address bar; a student opening it lands on the same view. The page travels in the URL
path (Streamlit's navigation). Values are read once when a session starts and written back on every run;
anything invalid (an unknown model, an image that is not a shipped example) falls back to the default where it
is used.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

RESTORED = "_share_restored"
# query parameter → (session key, parser)
FIELDS: dict[str, tuple[str, Any]] = {
    "model": ("family", str),
    "variant": ("variant", str),
    "image": ("image", lambda v: f"example:{v}"),
    "view": ("view", str),
    "method": ("method", str),
    "target": ("target", str),
    "sign": ("sign", str),
    "opacity": ("opacity", float),
    "presenter": ("presenter", lambda v: v in ("1", "true", "yes")),
}


def restore() -> None:
    """Copy the URL's values into session state, once per session (before any widget is drawn)."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    params = st.query_params
    for param, (key, parse) in FIELDS.items():
        if param in params:
            try:
                st.session_state[key] = parse(params[param])
            except ValueError:
                continue


def _value(param: str, key: str) -> str | None:
    value = st.session_state.get(key)
    if value is None:
        return None
    if param == "image":
        return value.removeprefix("example:") if str(value).startswith("example:") else None
    if param == "presenter":
        return "1" if value else None
    if param == "opacity":
        return f"{float(value):g}"
    return str(value)


def publish() -> None:
    """Write the current values to the URL (only what changed, so the browser history stays calm)."""
    wanted = {p: v for p, (k, _) in FIELDS.items() if (v := _value(p, k)) is not None}
    current = {k: st.query_params[k] for k in st.query_params}
    if wanted != current:
        st.query_params.from_dict(wanted)
