"""What the CLI writes: strict JSON (never ``NaN``/``Infinity``) and terminal text without control characters."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sedensenet.text import clean_text


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON ``null``), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(doc: Any) -> str:
    """One strict JSON document (RFC 8259: no NaN/Infinity; non-ASCII and control characters escaped)."""
    return json.dumps(finite(doc), indent=2, allow_nan=False)


def terminal(text: str) -> str:
    """``text`` safe to print: escape sequences, NUL and other control characters shown as ``\\xNN``."""
    return "\n".join(clean_text(line) for line in str(text).split("\n"))


def say(text: str = "", **kwargs: Any) -> None:
    """``print`` for text that may hold file-controlled strings (class names, key names, file names)."""
    print(terminal(text), **kwargs)
