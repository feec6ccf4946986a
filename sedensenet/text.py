"""Text from files (class names, key names, file names) made safe to show: no torch here, so the CLI's fast
``--help`` path and the app's escaping can use it."""

from __future__ import annotations

import unicodedata


def clean_text(text: str) -> str:
    """``text`` with control and format characters (terminal escapes, NUL, bidi overrides) made visible."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" or ch == " " else f"\\x{ord(ch):02x}"
                   if ord(ch) < 256 else f"\\u{ord(ch):04x}" for ch in text)
