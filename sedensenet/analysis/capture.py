"""Per-image SE capture: one forward, one record (squeeze + excitation) per SE layer, in forward order.

SE layers are found by structure: any sub-module that gates a 4-D input with a sigmoid computed only by
linear / 1×1-conv layers (pool → FC → … → sigmoid → scale). That covers this package's ``SELayer``, the course
seed's ``SELayer`` and similar blocks in other code.

Discovery walks every module, which costs as much as a small forward on DenseNet-121, so its result is cached
per model object in a weak, lock-guarded map (entries vanish with their model; the model itself is not touched).
A model whose SE layers are replaced after its first capture must call :func:`forget_se_modules`.

Thread safety: hooks are registered for the duration of one call and removed in ``finally``; each hook records
only forwards run by the thread that registered it, into that call's own buffers, so any number of threads may
capture on one shared model at once.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sedensenet.device import autocast
from sedensenet.errors import ConfigError
from sedensenet.models.densenet import ModelConfig, SESlot, se_slots

GATES = (nn.Sigmoid, nn.Hardsigmoid)
_BLOCK_LAYER = re.compile(r"denseblock(\d+)\.denselayer(\d+)")
_AFTER_BLOCK = re.compile(r"(?:^|\.)se(\d+)$")
LOCK_ATTR = "_sedensenet_lock"


def model_lock(model: nn.Module) -> threading.RLock:
    """The per-model lock held while a model is copied (attribution's private replica), so that no other
    thread's temporary hooks are half-registered in the copy. Capture and interventions need no lock: their
    hooks act only on the calling thread's forwards."""
    lock = model.__dict__.get(LOCK_ATTR)
    if lock is None:
        lock = model.__dict__.setdefault(LOCK_ATTR, threading.RLock())  # setdefault is atomic
    return lock


@dataclass(frozen=True)
class SEModule:
    """An SE layer found in a model: its name, module, gate (sigmoid) and optional pooling child."""

    name: str
    module: nn.Module
    gate: nn.Module
    pool: nn.Module | None
    block: int | None
    layer: int | None
    placement: str
    site: str = "other"
    label: str = ""


@dataclass
class SERecord:
    """One SE layer's squeeze (pooled channel descriptor) and excitation (gate) for a batch, B×C each.

    ``name`` is the module name (the key interventions use); ``site`` says which SE site it is
    (``sedensenet.models.densenet.SE_SITES``) and ``label`` where, in words ("block 2 input", "layer 3.4 input");
    ``placement`` is the model's whole SE placement (preset or sites). Channel counts differ between records.
    """

    name: str
    index: int
    block: int | None
    layer: int | None
    placement: str
    channels: int
    squeeze: Tensor
    excitation: Tensor
    site: str = "other"
    label: str = ""

    def as_dict(self, image: int = 0) -> dict[str, Any]:
        """JSON-ready record of one image of the batch."""
        return {"name": self.name, "index": self.index, "block": self.block, "layer": self.layer,
                "placement": self.placement, "site": self.site, "label": self.label, "channels": self.channels,
                "squeeze": self.squeeze[image].tolist(), "excitation": self.excitation[image].tolist()}


@dataclass
class Capture:
    """Logits of one forward plus the SE records, in forward order."""

    logits: Tensor
    records: list[SERecord] = field(default_factory=list)
    activation: str = "softmax"

    @property
    def probs(self) -> Tensor:
        """Class scores: a softmax, or independent sigmoids for a multi-label head (``head_activation``)."""
        if self.activation == "sigmoid":
            return torch.sigmoid(self.logits.float())
        return torch.softmax(self.logits.float(), dim=1)

    def top_k(self, k: int = 5, image: int = 0) -> list[tuple[int, float]]:
        """(class index, probability) of the ``k`` most likely classes for ``image``."""
        p = self.probs[image]
        values, idx = p.topk(min(k, p.numel()))
        return [(int(i), float(v)) for v, i in zip(values, idx, strict=True)]

    def excitation_rows(self, image: int = 0) -> list[Tensor]:
        """Per-layer excitation vectors of ``image`` (ragged: each layer has its own channel count)."""
        return [r.excitation[image] for r in self.records]


def _is_se_candidate(module: nn.Module) -> bool:
    leaves = [m for m in module.modules() if not list(m.children())]
    if not any(isinstance(m, GATES) for m in leaves):
        return False
    weighted = [m for m in leaves if any(True for _ in m.parameters(recurse=False))]
    if not weighted:
        return False
    for m in weighted:
        if isinstance(m, nn.Linear):
            continue
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            continue
        return False
    return True


def _site_map(model: nn.Module) -> tuple[dict[str, SESlot], str]:
    """The model's own SE slots by module name, and its placement, when it is an SE-DenseNet (possibly wrapped)."""
    cfg = getattr(model, "config", None) or getattr(getattr(model, "module", None), "config", None)
    if not isinstance(cfg, ModelConfig):
        return {}, "other"
    return {slot.name: slot for slot in se_slots(cfg)}, cfg.se


def _locate(name: str, slots: dict[str, SESlot], placement: str) -> tuple[int | None, int | None, str, str, str]:
    """(block, layer, placement, site, label) of the SE module ``name``: from the model's SE slots, else guessed
    from the name."""
    slot = slots.get(name) or slots.get(name.split(".", 1)[-1])  # "module." of DataParallel
    if slot is not None:
        return slot.block, slot.layer, placement, slot.site, slot.label
    if m := _BLOCK_LAYER.search(name):
        return int(m.group(1)), int(m.group(2)), placement, "layer", f"layer {m.group(1)}.{m.group(2)}"
    if m := _AFTER_BLOCK.search(name):
        return int(m.group(1)), None, placement, "block_output", f"after block {m.group(1)}"
    return None, None, placement, "other", name


class _DiscoveryCache:
    """Model → its SE modules, held weakly (a model's entry goes when the model does); safe across threads."""

    def __init__(self) -> None:
        self._found: weakref.WeakKeyDictionary[nn.Module, tuple[SEModule, ...]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, model: nn.Module) -> tuple[SEModule, ...] | None:
        with self._lock:
            return self._found.get(model)

    def put(self, model: nn.Module, modules: tuple[SEModule, ...]) -> None:
        with self._lock:
            self._found[model] = modules

    def forget(self, model: nn.Module) -> None:
        with self._lock:
            self._found.pop(model, None)


_DISCOVERED = _DiscoveryCache()  # the module's one piece of state: a weak cache, see the module docstring


def forget_se_modules(model: nn.Module) -> None:
    """Drop the cached SE discovery of ``model`` (after replacing or adding SE layers in it)."""
    _DISCOVERED.forget(model)


def find_se_modules(model: nn.Module) -> list[SEModule]:
    """SE layers of ``model`` by structure (outermost qualifying module), in registration order; cached per
    model (a fresh list each call, so callers may change it)."""
    cached = _DISCOVERED.get(model)
    if cached is None:
        cached = tuple(_discover(model))
        _DISCOVERED.put(model, cached)
    return list(cached)


def _discover(model: nn.Module) -> list[SEModule]:
    found: list[SEModule] = []
    taken: list[str] = []
    slots, placement = _site_map(model)
    for name, module in model.named_modules():
        if module is model or any(name.startswith(t + ".") for t in taken):
            continue
        if not _is_se_candidate(module):
            continue
        gate = [m for m in module.modules() if isinstance(m, GATES)][-1]
        pool = next((m for m in module.children() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
        block, layer, placement, site, label = _locate(name, slots, placement)
        found.append(SEModule(name, module, gate, pool, block, layer, placement, site, label))
        taken.append(name)
    return found


@contextmanager
def recording(model: nn.Module, se_modules: list[SEModule] | None = None) -> Iterator[list[SERecord]]:
    """Record SE squeeze/excitation of every forward this thread runs inside the ``with`` block."""
    modules = find_se_modules(model) if se_modules is None else se_modules
    owner = threading.get_ident()
    records: list[SERecord] = []
    pending: dict[int, Tensor] = {}
    handles = []

    def on_input(i: int):
        def hook(_mod: nn.Module, args: tuple[Any, ...]) -> None:
            if threading.get_ident() == owner and args and args[0].dim() == 4:
                pending[i] = args[0].detach().float().mean(dim=(2, 3)).clone()
        return hook

    def on_pool(i: int):
        def hook(_mod: nn.Module, _args: Any, out: Tensor) -> None:
            if threading.get_ident() == owner and out.dim() >= 2:
                pending[i] = out.detach().float().flatten(1).clone()
        return hook

    def on_gate(i: int, se: SEModule):
        def hook(_mod: nn.Module, _args: Any, out: Tensor) -> None:
            if threading.get_ident() != owner or i not in pending:
                return
            squeeze = pending.pop(i)
            gate = out.detach().float().flatten(1).clone()
            if gate.shape != squeeze.shape:  # not a channel gate after all (e.g. spatial attention)
                return
            records.append(SERecord(se.name, len(records), se.block, se.layer, se.placement, gate.shape[1],
                                    squeeze.cpu(), gate.cpu(), se.site, se.label or se.name))
        return hook

    try:
        for i, se in enumerate(modules):
            if se.pool is not None:  # the module's own pooling gives the squeeze: no second mean over H×W
                handles.append(se.pool.register_forward_hook(on_pool(i)))
            else:
                handles.append(se.module.register_forward_pre_hook(on_input(i)))
            handles.append(se.gate.register_forward_hook(on_gate(i, se)))
        yield records
    finally:
        for h in handles:
            h.remove()


def capture_excitations(model: nn.Module, x: Tensor, *, se_modules: list[SEModule] | None = None,
                        precision: str = "auto") -> Capture:
    """Run ``model`` on ``x`` (B×C×H×W, moved to the model's device) once; logits + one record per SE layer.

    Runs under ``torch.inference_mode``; safe to call from many threads. ``precision`` (``auto``, ``fp32``,
    ``bf16``, ``fp16``): ``auto`` is mixed precision on CUDA (bf16 where supported) and fp32 elsewhere; records
    and logits are returned as fp32 either way.
    """
    device = next(model.parameters()).device
    x = x.to(device)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    with recording(model, se_modules) as records, torch.inference_mode(), autocast(device, precision):
        logits = model(x)
    return Capture(logits=logits.detach().float().cpu(), records=list(records),
                   activation=getattr(model, "head_activation", "softmax"))


def se_input(model: nn.Module, x: Tensor, name: str) -> Tensor:
    """The feature map entering SE layer ``name`` (B×C×H×W, before scaling), from one forward of ``x``."""
    modules = {m.name: m for m in find_se_modules(model)}
    if name not in modules:
        raise ConfigError(f"{name!r} is not an SE layer of this model")
    owner = threading.get_ident()
    grabbed: list[Tensor] = []

    def hook(_mod: nn.Module, args: tuple[Any, ...]) -> None:
        if threading.get_ident() == owner:
            grabbed.append(args[0].detach().float().cpu().clone())

    handle = modules[name].module.register_forward_pre_hook(hook)
    try:
        with torch.inference_mode():
            model(x.to(next(model.parameters()).device))
    finally:
        handle.remove()
    return grabbed[0]


def se_hidden_units(module: nn.Module, squeeze: Tensor) -> Tensor | None:
    """ReLU(reduce(z)) of the SE ``module`` for squeezed values (1×C): its bottleneck, or None when the module's
    reduce layer cannot be told (a foreign SE block without ``fc[0]``)."""
    device = next(module.parameters()).device
    with torch.no_grad():
        if callable(getattr(module, "hidden_units", None)):
            return module.hidden_units(squeeze.to(device))[0].cpu()
        fc = getattr(module, "fc", None)
        if isinstance(fc, nn.Sequential) and len(fc) >= 3 and isinstance(fc[0], nn.Linear):
            return torch.relu(fc[0](squeeze.to(device)))[0].cpu()
    return None
