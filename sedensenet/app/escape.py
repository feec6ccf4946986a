"""User-controlled strings (file names, class names, messages quoting them) made inert for Streamlit markdown.

Streamlit renders markdown in ``st.markdown``, ``st.caption``, ``st.error`` and friends, some of it with HTML
allowed; a file named ``<img src=x onerror=…>.png`` or a class named ``# :red[big]`` must show as typed.
Backslash escapes of every ASCII punctuation character are CommonMark's own way to say "literal", and they
also defuse Streamlit's ``:color[…]``, ``$…$`` and emoji-shortcode extensions.
"""

from __future__ import annotations

import re

from sedensenet.text import clean_text

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: object) -> str:
    """``text`` as literal markdown text: one line, control characters visible, punctuation escaped."""
    flat = " ".join(clean_text(line) for line in str(text).splitlines())
    return _PUNCT.sub(r"\\\1", flat)
