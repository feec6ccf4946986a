"""Architecture summaries for ``sedensenet info`` and the Model page: stages, SE placements, parameters, FLOPs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sedensenet.models.checkpoint import LoadedModel
from sedensenet.models.densenet import ModelConfig, SELayer, count_parameters, se_input_widths


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
    epochs_trained: int
    device: str

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
        se_parameters=se_parameters(loaded.model), input_size=loaded.input_size, mean=list(meta["mean"]),
        std=list(meta["std"]), source=meta.get("source"), assumed=list(meta.get("assumed", [])),
        epochs_trained=len(meta.get("history") or []), device=str(loaded.device))


def model_stages(cfg: ModelConfig) -> tuple[list[tuple[str, str, int]], list[str]]:
    """(name, kind, channels out) for stem, blocks, transitions, norm and head; and the stages carrying SE."""
    stages: list[tuple[str, str, int]] = [("stem", "stem", cfg.num_init_features)]
    se: list[str] = []
    n = cfg.num_init_features
    for i, layers in enumerate(cfg.block_config, start=1):
        n += layers * cfg.growth_rate
        name = f"block {i}<br>{layers} layers"
        stages.append((name, "block", n))
        if cfg.se == "layer" or cfg.se == "block" or (cfg.se == "final" and i == len(cfg.block_config)):
            se.append(name)
        if i != len(cfg.block_config):
            n = int(n * cfg.compression)
            stages.append((f"transition {i}", "transition", n))
    stages += [("norm + pool", "norm", n), ("classifier", "head", cfg.num_classes)]
    return stages, se


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
    where = SE_PLACEMENT_TEXT.get(cfg.se, str(cfg.se))
    hidden = (f"{cfg.se_hidden} hidden units" if cfg.se_hidden is not None
              else f"a hidden width of its channels ÷ {cfg.se_reduction} (at least 1)")
    return (f"SE {where}. Each SE's excitation network has {hidden}, with biases "
            f"{'on' if cfg.se_bias else 'off'}.")
