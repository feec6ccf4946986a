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
