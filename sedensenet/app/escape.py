"""User-controlled strings (file names, class names, messages quoting them) made inert for Streamlit markdown.

Streamlit renders markdown in ``st.markdown``, ``st.caption``, ``st.error`` and friends, some of it with HTML
allowed; a file named ``<img src=x onerror=…>.png`` or a class named ``# :red[big]`` must show as typed.
Backslash escapes of every ASCII punctuation character are CommonMark's own way to say "literal", and they
also defuse Streamlit's ``:color[…]``, ``$…$`` and emoji-shortcode extensions. Text is kept on one line, so
line-start syntax (headings, lists) cannot begin inside it; ``#`` is escaped anyway.
"""

from __future__ import annotations

import re

from sedensenet.text import clean_text

# Characters that start markdown/HTML syntax anywhere in a line (emphasis, code, links, images, HTML, entities,
# tables, strike-through, LaTeX, Streamlit's :directives:); ".", "-", "+" only matter at the start of a line.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#|~$:!&])")


def escape_markdown(text: object) -> str:
    """``text`` as literal markdown text: one line, control characters visible, punctuation escaped."""
    flat = " ".join(clean_text(line) for line in str(text).splitlines())
    return _SPECIAL.sub(r"\\\1", flat)
