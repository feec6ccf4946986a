"""SE interventions: switch SE off (gate = 1) everywhere or in chosen layers, or override chosen channels.

Implemented with forward hooks on the gates that act only on the calling thread's forwards and are removed in
``finally``: the (possibly shared) model is never modified.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sedensenet.analysis.capture import Capture, SEModule, capture_excitations, find_se_modules
from sedensenet.errors import ConfigError


@dataclass(frozen=True)
class Intervention:
    """What to change: ``off`` = layer names (or ``"all"``) whose gates become 1; ``channels`` = per-layer
    ``{channel: value}`` gate overrides (0 silences a channel, 1 passes it unchanged)."""

    off: str | tuple[str, ...] = ()
    channels: Mapping[str, Mapping[int, float]] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        if self.off == "all":
            parts.append("SE off in every layer")
        elif self.off:
            parts.append(f"SE off in {', '.join(self.off)}")
        for name, chans in self.channels.items():
            if chans:  # a layer with no channels picked changes nothing: say nothing about it
                parts.append(f"{name}: " + ", ".join(f"ch {c} → {v:g}" for c, v in sorted(chans.items())))
        return "; ".join(parts) or "no change (no channels picked)"

    @property
    def empty(self) -> bool:
        """True when this intervention changes no gate (e.g. no channels picked yet)."""
        return not self.off and not any(self.channels.values())


def _validate(intervention: Intervention, modules: Sequence[SEModule]) -> None:
    names = {m.name: m for m in modules}
    wanted = [] if intervention.off == "all" else list(intervention.off)
    unknown = [n for n in [*wanted, *intervention.channels] if n not in names]
    if unknown:
        raise ConfigError(f"unknown SE layer(s) {unknown}; the model's SE layers are {list(names)[:5]} …")
    for name, chans in intervention.channels.items():
        if any(c < 0 for c in chans):
            raise ConfigError(f"negative channel index in {name}: {sorted(chans)}")


@contextmanager
def intervening(model: nn.Module, intervention: Intervention,
                se_modules: Sequence[SEModule] | None = None) -> Iterator[None]:
    """Apply ``intervention`` to every forward this thread runs inside the ``with`` block."""
    modules = list(find_se_modules(model) if se_modules is None else se_modules)
    _validate(intervention, modules)
    owner = threading.get_ident()
    handles = []

    def make_hook(off: bool, chans: Mapping[int, float]):
        def hook(_mod: nn.Module, _args: Any, out: Tensor) -> Tensor | None:
            if threading.get_ident() != owner:
                return None
            new = torch.ones_like(out) if off else out.clone()
            for c, v in chans.items():
                if c >= new.shape[1]:
                    raise ConfigError(f"channel {c} is outside 0…{new.shape[1] - 1} in this SE layer")
                new[:, c] = v
            return new
        return hook

    try:
        for se in modules:
            off = intervention.off == "all" or se.name in intervention.off
            chans = intervention.channels.get(se.name, {})
            if off or chans:
                handles.append(se.gate.register_forward_hook(make_hook(off, chans)))
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class InterventionResult:
    """Predictions before and after an intervention on the same input."""

    before: Capture
    after: Capture
    intervention: Intervention

    def prob_change(self, image: int = 0) -> Tensor:
        return self.after.probs[image] - self.before.probs[image]

    def summary(self, classes: Sequence[str], image: int = 0, k: int = 5) -> dict[str, Any]:
        """JSON-ready: top-1 before/after, whether it flipped, and the largest probability changes."""
        delta = self.prob_change(image)
        order = delta.abs().argsort(descending=True)[:k]
        b, a = self.before.top_k(1, image)[0], self.after.top_k(1, image)[0]
        return {"intervention": self.intervention.describe(),
                "before": {"class": classes[b[0]], "prob": b[1]}, "after": {"class": classes[a[0]], "prob": a[1]},
                "top1_changed": b[0] != a[0],
                "largest_changes": [{"class": classes[int(i)], "before": float(self.before.probs[image, i]),
                                     "after": float(self.after.probs[image, i]), "change": float(delta[i])}
                                    for i in order]}


def run_intervention(model: nn.Module, x: Tensor, intervention: Intervention) -> InterventionResult:
    """Capture ``x`` as is and with ``intervention``; both with SE records (the 'after' ones show the new gates)."""
    modules = find_se_modules(model)
    before = capture_excitations(model, x, se_modules=modules)
    with intervening(model, intervention, modules):  # registered first: the capture records the new gates
        after = capture_excitations(model, x, se_modules=modules)
    return InterventionResult(before, after, intervention)
