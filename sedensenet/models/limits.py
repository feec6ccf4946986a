"""Bounds checked *before* a checkpoint costs memory or time: archive sizes, tensor layouts, model cost.

A 1 MB upload can declare gigabytes (deflated zip entries, zero-stride tensors, a config with growth 100,000,
an ``input_size`` of 4,096 on a 64-px model). Every check here reads only sizes and shapes, so refusing such a
file costs no more than reading it.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sedensenet.errors import CheckpointError
from sedensenet.models.densenet import ModelConfig

MAX_UNCOMPRESSED_BYTES = 1 << 30  # what torch.load may inflate a checkpoint archive to
MAX_INFLATED_BYTES = 64 << 20  # torch.save never compresses; deflated entries past this (and 16× the file) are a bomb
MAX_PARAM_BYTES = 1 << 30  # densenet161 holds 115 MB of float32 weights; ~9× that is not a DenseNet we show
MAX_LAYERS = 1000  # DenseNet-264 has 130 dense layers, DenseNet-BC-250 has 123
MAX_FORWARD_FLOPS = 60e9  # one image; DenseNet-161 at 224² is 15.6 GFLOPs
MAX_ACTIVATION_BYTES = 1 << 30  # feature maps of one forward at batch 1
MAX_FINAL_SIDE = 64  # final feature map side: 64 × the network's downsampling is the largest input we run


def check_archive(data: bytes, name: str, max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> None:
    """Refuse a zip-format checkpoint whose entries inflate past ``max_uncompressed``, or whose compressed
    entries inflate far past the file's own size (read from the central directory, before anything is
    decompressed). Non-zip (legacy) files hold their bytes as they are."""
    if not data.startswith(b"PK"):
        return
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # torch.load reports a corrupt archive with its own message
    total = sum(i.file_size for i in infos)
    inflated = sum(i.file_size for i in infos if i.compress_type != zipfile.ZIP_STORED)
    if total > max_uncompressed or inflated > max(MAX_INFLATED_BYTES, 16 * len(data)):
        raise CheckpointError(
            f"{name} inflates to {total / 2**20:,.0f} MiB from {len(data) / 2**20:,.1f} MiB on disk (compressed zip "
            f"entries), over the {max_uncompressed / 2**20:,.0f} MiB limit; save it again with torch.save, which "
            "does not compress.")


def check_tensors(state: Mapping[str, Any], name: str) -> None:
    """Every entry must be a dense tensor that owns the bytes its shape declares, with finite values.

    Zero or overlapping strides let a 40-byte storage claim a 10⁶×10⁶ tensor that any copy would materialise;
    sparse layouts are not weights a DenseNet stores; NaN/inf weights give NaN probabilities.
    """
    sparse, strided, bad = [], [], []
    for key, t in state.items():
        if not isinstance(t, Tensor):
            continue
        if t.layout != torch.strided:
            sparse.append(f"{key} ({str(t.layout).removeprefix('torch.')})")
            continue
        if t.numel() > 1 and (t.numel() * t.element_size() > t.untyped_storage().nbytes() - t.storage_offset()
                              * t.element_size() or 0 in [s for s, n in zip(t.stride(), t.shape, strict=True)
                                                          if n > 1]):
            strided.append(f"{key} {tuple(t.shape)} in {t.untyped_storage().nbytes():,} bytes")
    if sparse:
        raise CheckpointError(f"{name} holds sparse tensors ({_names(sparse)}); DenseNet weights are dense: save "
                              "them with t.to_dense() (or model.state_dict()) and try again.")
    if strided:
        raise CheckpointError(f"{name} declares tensors larger than the data it stores (zero or overlapping "
                              f"strides): {_names(strided)}. Save real weights with torch.save(model.state_dict()).")
    for key, t in state.items():
        if isinstance(t, Tensor) and (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            bad.append(key)
    if bad:
        raise CheckpointError(f"{name} has NaN or infinite weights in {_names(bad)} (did training diverge?); "
                              "use an earlier checkpoint or retrain with a lower learning rate.")


@dataclass(frozen=True)
class ModelCost:
    """What a config costs before it is built: parameters, and one forward of one image at ``input_size``²."""

    parameters: int
    flops: float
    activation_bytes: int
    downsampling: int
    final_side: int

    @property
    def parameter_bytes(self) -> int:
        return 4 * self.parameters


def model_cost(cfg: ModelConfig, input_size: int) -> ModelCost:
    """Analytic estimate (convolutions, norms, classifier; SE adds < 2 %) — cheap even for absurd configs."""
    g, bn = cfg.growth_rate, cfg.bn_size * cfg.growth_rate
    k = 3 if cfg.stem == "small" else 7
    side = input_size if cfg.stem == "small" else max(1, input_size // 4)
    down = 1 if cfg.stem == "small" else 4
    n = cfg.num_init_features
    params = cfg.in_channels * n * k * k + (0 if cfg.stem == "small" else 2 * n)  # the small stem has no norm
    stem_side = input_size if cfg.stem == "small" else max(1, input_size // 2)
    flops = 2.0 * cfg.in_channels * n * k * k * stem_side**2
    act = n * stem_side**2
    for i, layers in enumerate(cfg.block_config):
        px = side * side
        for j in range(layers):
            c = n + j * g
            params += 2 * c + c * bn + 2 * bn + 9 * bn * g
            flops += 2.0 * px * (c * bn + 9 * bn * g)
            act += px * (c + 2 * bn + g)  # concatenated input, bottleneck (pre/post norm), new features
        n += layers * g
        if i < len(cfg.block_config) - 1:
            out = max(1, int(n * cfg.compression))
            params += 2 * n + n * out
            flops += 2.0 * px * n * out
            act += px * (n + out)
            n, side, down = out, max(1, side // 2), down * 2
    params += 2 * n + n * cfg.num_classes + cfg.num_classes
    return ModelCost(parameters=params, flops=flops, activation_bytes=4 * act, downsampling=down,
                     final_side=input_size // down)


def check_model_cost(cfg: ModelConfig, input_size: int, name: str) -> ModelCost:
    """Refuse a config (or an input size) that would take more memory or time than any DenseNet we show."""
    layers = sum(cfg.block_config)
    if layers > MAX_LAYERS:
        raise CheckpointError(f"{name} describes {layers:,} dense layers (at most {MAX_LAYERS}); not a DenseNet this "
                              "tool can show. Check the model config in the file.")
    cost = model_cost(cfg, input_size)
    if cost.parameter_bytes > MAX_PARAM_BYTES:
        raise CheckpointError(
            f"{name} describes a model of {cost.parameters:,} parameters ({cost.parameter_bytes / 2**30:,.1f} GiB; "
            f"growth {cfg.growth_rate}, blocks {list(cfg.block_config)}), over the "
            f"{MAX_PARAM_BYTES / 2**30:.0f} GiB limit; the config does not describe a usable DenseNet.")
    lo, hi = cost.downsampling, cost.downsampling * MAX_FINAL_SIDE
    if cost.final_side < 1 or cost.final_side > MAX_FINAL_SIDE:
        raise CheckpointError(
            f"{name} asks for input_size {input_size}, but this architecture downsamples ×{cost.downsampling}: "
            f"usable input sizes are {lo}…{hi} (final feature map 1…{MAX_FINAL_SIDE} px). Fix 'input_size' in the "
            "metadata to the size the model was trained at.")
    if cost.flops > MAX_FORWARD_FLOPS or cost.activation_bytes > MAX_ACTIVATION_BYTES:
        raise CheckpointError(
            f"{name}: one {input_size}² image would take {cost.flops / 1e9:,.0f} GFLOPs and "
            f"{cost.activation_bytes / 2**20:,.0f} MiB of feature maps (limits {MAX_FORWARD_FLOPS / 1e9:.0f} GFLOPs, "
            f"{MAX_ACTIVATION_BYTES / 2**20:.0f} MiB); use a smaller 'input_size' or a smaller model.")
    if not math.isfinite(cost.flops):
        raise CheckpointError(f"{name}: the model config is not usable")
    return cost


def _names(items: list[str], limit: int = 6) -> str:
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_config_shapes(cfg: ModelConfig, state: Mapping[str, Any], name: str) -> None:
    """The stored config must agree with the tensors it comes with (stem, growth, bottleneck, layer counts,
    classifier) — checked on shapes alone, before a model of that config is built."""
    k = 3 if cfg.stem == "small" else 7
    g, bn = cfg.growth_rate, cfg.bn_size * cfg.growth_rate
    final = cfg.num_init_features
    for i, layers in enumerate(cfg.block_config):
        final += layers * g
        if i < len(cfg.block_config) - 1:
            final = max(1, int(final * cfg.compression))
    expected = {
        "features.conv0.weight": (cfg.num_init_features, cfg.in_channels, k, k),
        "features.denseblock1.denselayer1.conv1.weight": (bn, cfg.num_init_features, 1, 1),
        "features.denseblock1.denselayer1.conv2.weight": (g, bn, 3, 3),
        "classifier.weight": (cfg.num_classes, final),
    }
    wrong = []
    for key, shape in expected.items():
        t = state.get(key)
        if isinstance(t, Tensor) and tuple(t.shape) != shape:
            wrong.append(f"{key} is {tuple(t.shape)}, the config needs {shape}")
    for b, layers in enumerate(cfg.block_config, start=1):
        if f"features.denseblock{b}.denselayer{layers}.conv2.weight" in state and \
                f"features.denseblock{b}.denselayer{layers + 1}.conv2.weight" not in state:
            continue
        wrong.append(f"dense block {b} has a different number of layers than the config's {layers}")
        break
    if wrong:
        raise CheckpointError(f"{name}: the stored model config does not match its weights ({_names(wrong)}); "
                              "the file is inconsistent — save it again with sedensenet.save_checkpoint.")
