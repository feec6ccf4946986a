"""Warnings about SE layers whose gates carry no information (so a reader does not mistake them for findings).

A layer whose gates are (almost) the same for every channel of every image shown only rescales its whole input
by one number. A layer with dead (always-zero) ReLU hidden units does that on every image (each gate is σ(bias),
σ(0) = 0.5 without biases), and so, nearly, does one whose SE weights learned almost nothing to switch. The flag
sees only the images shown: on one image it can also mark a layer that happens to gate that image evenly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sedensenet.errors import ConfigError

NEAR_CONSTANT_STD = 0.01
NEAR_CONSTANT_CAUSE = "dead or barely trained SE units"  # one wording for the note, the heat-map and the depth plot
NEAR_CONSTANT_NOTE = ("near-constant: this SE layer passes every channel at ≈ the same gate here — if it does on "
                      f"every image, an artefact of training ({NEAR_CONSTANT_CAUSE}), not a finding")


def gate_spread(excitation: Any) -> float:
    """Standard deviation of one layer's gates over every image and channel given (B×C, C or any shape)."""
    values = np.asarray(excitation, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(values.std()) if values.size else 0.0


def near_constant_layers(excitations: Sequence[Any], threshold: float = NEAR_CONSTANT_STD) -> list[int]:
    """Indices of the layers whose gate spread (:func:`gate_spread`) is below ``threshold``."""
    if threshold <= 0:
        raise ConfigError(f"threshold must be > 0, got {threshold}")
    return [i for i, e in enumerate(excitations) if gate_spread(e) < threshold]


def near_constant_message(names: Sequence[str], flagged: Sequence[int]) -> str | None:
    """One line naming the flagged layers and explaining the flag, or None when nothing is flagged."""
    if not flagged:
        return None
    shown = ", ".join(names[i] for i in flagged)
    return f"⚠ {shown} — {NEAR_CONSTANT_NOTE} (gate std < {NEAR_CONSTANT_STD} over the channels shown)."
