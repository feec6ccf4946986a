"""Architecture summary for the Model page: stages, SE placements, parameters and FLOPs."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sedensenet.models.densenet import ModelConfig, SELayer, count_parameters


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
