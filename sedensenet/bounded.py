"""Read a user's file (a path or uploaded bytes) with a size bound checked before and after reading."""

from __future__ import annotations

import os
from pathlib import Path

from sedensenet.errors import SedensenetError


def read_bounded(source: str | os.PathLike[str] | bytes, *, limit: int, label: str | None, default: str,
                 error: type[SedensenetError], too_large: str) -> tuple[bytes, str]:
    """``(data, label)`` of ``source``; raises ``error`` for a missing file or more than ``limit`` bytes
    (``too_large`` is appended to the message, e.g. "; use a smaller image"). An upload has no path to stat, so
    its length is checked too."""
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), label or default
    else:
        path = Path(source)
        label = label or path.name
        if not path.is_file():
            raise error(f"{label}: file not found")
        if path.stat().st_size > limit:
            raise error(f"{label} is larger than {limit / 2**20:.0f} MiB{too_large}")
        data = path.read_bytes()
    if len(data) > limit:
        raise error(f"{label} is larger than {limit / 2**20:.0f} MiB{too_large}")
    return data, label
