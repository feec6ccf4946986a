"""Numbers for the Learn page's squeeze → excitation → scale walkthrough of one SE channel.

Kept out of the app so the maths is testable: the page only lays the numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from sedensenet.analysis.capture import SERecord, find_se_modules, se_hidden_units, se_input


@dataclass(frozen=True)
class SEStep:
    """One channel through one SE block: the feature map U before SE, its squeeze z, its gate s and the
    excitation's hidden units (ReLU outputs of the bottleneck; ``None`` when the block has no ``fc`` pair)."""

    layer: str
    channel: int
    before: np.ndarray
    squeeze: float
    gate: float
    hidden: list[float] | None

    @property
    def after(self) -> np.ndarray:
        """The channel as the next layer sees it: gate × U."""
        return self.before * self.gate


def hidden_units(model: nn.Module, record: SERecord, image: int = 0) -> list[float] | None:
    """ReLU(W₁ · z) of the SE block ``record.name`` for one image (the bottleneck between squeeze and gates)."""
    module = {m.name: m for m in find_se_modules(model)}[record.name].module
    hidden = se_hidden_units(module, record.squeeze[image:image + 1])  # any SE module variant
    return None if hidden is None else hidden.float().tolist()


def se_step(model: nn.Module, x: Tensor, record: SERecord, channel: int) -> SEStep:
    """Follow ``channel`` of SE layer ``record`` for the first image of ``x``."""
    if not 0 <= channel < record.channels:
        raise ValueError(f"channel {channel} is outside 0…{record.channels - 1} of {record.name}")
    u = se_input(model, x[:1], record.name)[0, channel].numpy()
    return SEStep(record.name, channel, u, float(record.squeeze[0, channel]), float(record.excitation[0, channel]),
                  hidden_units(model, record))
