"""Architecture summaries for ``sedensenet info`` and the Model page: stages, SE placements, parameters, FLOPs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sedensenet.models.checkpoint import LoadedModel
from sedensenet.models.densenet import ModelConfig, SELayer, count_parameters, se_input_widths, se_slots, stages

_SITE_WORDS = {"stem": "after the stem", "block_input": "at the block input", "layer_input": "on each dense layer's "
               "input", "layer": "on each dense layer's new features", "block_output": "at the block output",
               "transition_input": "at the transition input", "pre_norm": "after the last block, before the final "
               "norm", "post_norm": "after the final norm"}




@dataclass(frozen=True)
class ModelSummary:
    """What ``sedensenet info`` prints and the Model page shows about a loaded checkpoint."""

    arch: str
    se: str
    se_layers: int
    se_hidden: int | str
    se_bias: bool
    growth_rate: int
    block_config: list[int]
    num_init_features: int
    stem: str
    num_classes: int
    classes: list[str]
    parameters: int
    se_parameters: int
    input_size: int
    mean: list[float]
    std: list[float]
    source: str | None
    assumed: list[str]
    warnings: list[str]
    epochs_trained: int
    device: str
    se_sites: list[dict[str, Any]]
    family: str | None
    head: str
    head_activation: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the ``info --json`` document)."""
        return asdict(self)

    @property
    def se_share(self) -> float:
        """SE parameters relative to the rest of the model."""
        return self.se_parameters / max(1, self.parameters - self.se_parameters)


def summarise(loaded: LoadedModel) -> ModelSummary:
    """Architecture, SE placement, classes, parameter counts and input size of a loaded checkpoint."""
    cfg = loaded.config
    meta = loaded.meta
    return ModelSummary(
        arch=cfg.arch, se=cfg.se, se_layers=len(se_input_widths(cfg)),
        se_hidden=cfg.se_hidden if cfg.se_hidden is not None else f"C // {cfg.se_reduction} (≥ 1)",
        se_bias=cfg.se_bias, growth_rate=cfg.growth_rate, block_config=list(cfg.block_config),
        num_init_features=cfg.num_init_features, stem=cfg.stem, num_classes=cfg.num_classes,
        classes=list(loaded.classes), parameters=count_parameters(loaded.model),
        se_parameters=se_parameters(loaded.model), input_size=loaded.input_size, mean=list(meta.mean),
        std=list(meta.std), source=meta.source, assumed=list(meta.assumed), warnings=list(meta.warnings),
        epochs_trained=meta.epochs_trained, device=str(loaded.device), se_sites=se_site_table(cfg),
        family=meta.family, head=_head_text(loaded), head_activation=meta.head_activation)


def _head_text(loaded: LoadedModel) -> str:
    from sedensenet.models.heads import HeadSpec

    head = loaded.meta.head
    return HeadSpec.from_dict(head).describe() if head is not None else f"Linear, {loaded.meta.head_activation}"


def model_stages(cfg: ModelConfig) -> tuple[list[tuple[str, str, int]], dict[str, str]]:
    """(name, kind, channels out) for stem, blocks, transitions, norm and head; and, for each stage carrying SE,
    where in it the SE sits (in words)."""
    names: dict[tuple[str, int], str] = {}
    out: list[tuple[str, str, int]] = []
    for st in stages(cfg):
        name = {"stem": "stem", "block": f"block {st.index}<br>{st.layers} layers",
                "transition": f"transition {st.index}", "norm": "norm + pool"}[st.kind]
        names[(st.kind, st.index)] = name
        out.append((name, st.kind, st.channels_out))
    out.append(("classifier", "head", cfg.num_classes))
    last = len(cfg.block_config)
    se: dict[str, list[str]] = {}
    for slot in se_slots(cfg):
        kind, index = {"stem": ("stem", 0), "transition_input": ("transition", slot.block),
                       "pre_norm": ("block", last), "post_norm": ("norm", 0)}.get(slot.site, ("block", slot.block))
        words = se.setdefault(names[(kind, index or 0)], [])
        if _SITE_WORDS[slot.site] not in words:
            words.append(_SITE_WORDS[slot.site])
    return out, {name: "; ".join(words) for name, words in se.items()}


def describe_placement(cfg: ModelConfig) -> str:
    """The SE placement in words, site by site (forward order)."""
    if not cfg.sites:
        return "no SE (baseline)"
    return "; ".join(_SITE_WORDS[site] for site in cfg.sites)


def se_site_table(cfg: ModelConfig) -> list[dict[str, object]]:
    """One row per SE site: how many modules, their channel counts, hidden widths, bias and module variant."""
    rows = []
    for site in cfg.sites:
        spec = cfg.site_spec(site)
        slots = [s for s in se_slots(cfg) if s.site == site]
        widths = sorted({s.channels for s in slots})
        hidden = sorted({spec.hidden_for(c) for c in widths})
        rows.append({"site": site, "where": _SITE_WORDS[site], "SE modules": len(slots),
                     "channels": _span(widths), "hidden": _span(hidden),
                     "width rule": f"fixed {spec.hidden}" if spec.hidden is not None else f"C // {spec.reduction}",
                     "bias": spec.bias, "variant": spec.variant,
                     "blocks": "all" if spec.blocks is None else ", ".join(map(str, spec.blocks))})
    return rows


def _span(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}…{values[-1]}"


def se_parameters(model: nn.Module) -> int:
    """Parameters inside SE layers."""
    return sum(count_parameters(m) for m in model.modules() if isinstance(m, SELayer))


def count_flops(model: nn.Module, input_size: int, in_channels: int = 3) -> int:
    """Floating-point operations of one forward at ``input_size``² (multiply-adds count as 2)."""
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, input_size, input_size, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


SE_PLACEMENT_TEXT = {"layer": "inside every dense layer, on its new channels after conv2",
                     "block": "after every dense block, on all its output channels",
                     "final": "once, after the last dense block, before the final norm"}


def se_placement_text(cfg: ModelConfig) -> str:
    """One plain sentence on where SE sits and how its excitation network is shaped (none for a baseline)."""
    if cfg.se == "none":
        return "No SE blocks: this is the baseline, the same DenseNet without channel gates."
    where = SE_PLACEMENT_TEXT.get(cfg.se) or describe_placement(cfg)
    if cfg.se_sites:
        return f"SE {where}. Widths, biases or module variants differ by site (see the table)."
    hidden = (f"{cfg.se_hidden} hidden units" if cfg.se_hidden is not None
              else f"a hidden width of its channels ÷ {cfg.se_reduction} (at least 1)")
    return (f"SE {where}. Each SE's excitation network has {hidden}, with biases "
            f"{'on' if cfg.se_bias else 'off'}.")
