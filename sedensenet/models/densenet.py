"""SE-DenseNet: one DenseNet implementation with Squeeze-and-Excitation at a chosen placement.

Module names follow torchvision (``features.conv0``, ``denseblock{i}.denselayer{j}``, ``norm5``,
``classifier``) so torchvision weights load unchanged. SE modules are ``denselayer{j}.se`` (placement
``"layer"``) or ``features.se{i}`` after dense block ``i`` (placements ``"block"`` and ``"final"``).
In eval mode with autograd on (attribution), no operation in ``forward`` is in place, so forward hooks and
autograd hooks always work; for inference the ReLUs and the SE scale work in place on fresh tensors, and in
training the ReLUs do (as torchvision's do).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from sedensenet.errors import ConfigError

SE_PLACEMENTS = ("none", "layer", "block", "final")
STEMS = ("imagenet", "small")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    compression: float = 0.5
    stem: str = "imagenet"
    num_classes: int = 1000
    in_channels: int = 3
    drop_rate: float = 0.0
    se: str = "layer"
    se_reduction: int = 16
    se_hidden: int | None = None
    se_bias: bool = False
    memory_efficient: bool = False
    arch: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_config", tuple(int(b) for b in self.block_config))
        if self.se not in SE_PLACEMENTS:
            raise ConfigError(f"se={self.se!r} is not a placement; choose one of {', '.join(SE_PLACEMENTS)}")
        if self.stem not in STEMS:
            raise ConfigError(f"stem={self.stem!r} is not known; choose one of {', '.join(STEMS)}")
        if not self.block_config or min(self.block_config) < 1:
            raise ConfigError(f"block_config={self.block_config} needs at least one block of ≥ 1 layer")
        if not 0 < self.compression <= 1:
            raise ConfigError(f"compression={self.compression} must be in (0, 1]")
        if min(self.growth_rate, self.num_init_features, self.bn_size, self.num_classes, self.in_channels) < 1:
            raise ConfigError("growth_rate, num_init_features, bn_size, num_classes and in_channels must be ≥ 1")
        if self.se_reduction < 1:
            raise ConfigError(f"se_reduction={self.se_reduction} must be ≥ 1")
        if self.se_hidden is not None and self.se_hidden < 0:
            raise ConfigError(f"se_hidden={self.se_hidden} must be ≥ 1 (or None to use the reduction)")
        if not 0 <= self.drop_rate < 1:
            raise ConfigError(f"drop_rate={self.drop_rate} must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON- and ``weights_only``-safe dict."""
        d = asdict(self)
        d["block_config"] = list(self.block_config)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)

    def se_hidden_for(self, channels: int) -> int:
        """Hidden width of the SE bottleneck for ``channels`` inputs (clamped to ≥ 1)."""
        if self.se_hidden is not None:
            return self.se_hidden
        return max(1, channels // self.se_reduction)


# Named configurations. ``small`` stem = one 3x3 conv (CIFAR-style, gpleiss / course seed).
ARCHS: dict[str, dict[str, Any]] = {
    "densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64),
    "densenet169": dict(growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64),
    "densenet201": dict(growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64),
    "densenet161": dict(growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96),
    # The course seed's own default: growth 32, blocks 6-12-24-16, 24 init features, small inputs, 10 classes.
    "seed": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=24, stem="small",
                 num_classes=10),
    # The shipped demo models: a small DenseNet for 64² images (ImageNet-style stem → 16² maps), 8 classes.
    "demo": dict(growth_rate=12, block_config=(6, 6, 6), num_init_features=24, num_classes=8),
    # DenseNet-BC for CIFAR; depth and growth are options (default L=100, k=12: 0.8 M parameters).
    "densenet_bc": dict(stem="small", num_classes=10),
}


def densenet_bc_config(depth: int = 100, growth: int = 12) -> dict[str, Any]:
    """Block layout of a CIFAR DenseNet-BC of ``depth`` (3 blocks of (depth-4)/6 bottleneck layers)."""
    if (depth - 4) % 6 != 0 or depth < 10:
        raise ConfigError(f"DenseNet-BC depth must be 6n+4 with n ≥ 1 (e.g. 40, 100, 190); got {depth}")
    n = (depth - 4) // 6
    return dict(growth_rate=growth, block_config=(n, n, n), num_init_features=2 * growth)


class ReLU(nn.ReLU):
    """ReLU on a fresh batch-norm output: in place (like torchvision's) for inference and for training, out of
    place for gradients in eval mode — the attribution case, where Captum's module hooks need the input intact."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, inplace=self.training or not torch.is_grad_enabled())


class SELayer(nn.Module):
    """Squeeze (global average pool) → excitation (FC-ReLU-FC-Sigmoid) → scale.

    Child names match the course seed (``fc.0``, ``fc.2``) so its weights load directly.
    """

    def __init__(self, channels: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = hidden
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=bias),
            nn.ReLU(),
            nn.Linear(hidden, channels, bias=bias),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        gate = self.fc(self.squeeze(x).view(b, c)).view(b, c, 1, 1)
        if torch.is_grad_enabled():
            return x * gate
        # Inference: scale in place (x is the fresh conv/concat output); saves a large allocation per SE layer.
        return x.mul_(gate)


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 bottleneck (+ SE on the new channels)."""

    def __init__(self, in_features: int, cfg: ModelConfig) -> None:
        super().__init__()
        inter = cfg.bn_size * cfg.growth_rate
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = ReLU()
        self.conv1 = nn.Conv2d(in_features, inter, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inter)
        self.relu2 = ReLU()
        self.conv2 = nn.Conv2d(inter, cfg.growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        if cfg.se == "layer":
            self.se = SELayer(cfg.growth_rate, cfg.se_hidden_for(cfg.growth_rate), cfg.se_bias)
        self.drop_rate = float(cfg.drop_rate)
        self.memory_efficient = cfg.memory_efficient

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, features: list[Tensor]) -> Tensor:
        if self.memory_efficient and self.training and any(t.requires_grad for t in features):
            out = cp.checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))
        if hasattr(self, "se"):
            out = self.se(out)
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each sees the concatenation of all earlier outputs."""

    def __init__(self, num_layers: int, in_features: int, cfg: ModelConfig) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_features + i * cfg.growth_rate, cfg))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool between dense blocks."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = ReLU()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class SEDenseNet(nn.Module):
    """DenseNet with SE blocks at ``config.se`` (``"none"`` is the plain DenseNet baseline)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        stem: list[tuple[str, nn.Module]]
        if cfg.stem == "small":
            stem = [("conv0", nn.Conv2d(cfg.in_channels, cfg.num_init_features, 3, 1, 1, bias=False))]
        else:
            stem = [
                ("conv0", nn.Conv2d(cfg.in_channels, cfg.num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(cfg.num_init_features)),
                ("relu0", ReLU()),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))
        n = cfg.num_init_features
        last = len(cfg.block_config)
        for i, num_layers in enumerate(cfg.block_config, start=1):
            self.features.add_module(f"denseblock{i}", DenseBlock(num_layers, n, cfg))
            n += num_layers * cfg.growth_rate
            if cfg.se == "block" or (cfg.se == "final" and i == last):
                self.features.add_module(f"se{i}", SELayer(n, cfg.se_hidden_for(n), cfg.se_bias))
            if i != last:
                out = int(n * cfg.compression)
                self.features.add_module(f"transition{i}", Transition(n, out))
                n = out
        self.features.add_module("norm5", nn.BatchNorm2d(n))
        self.num_features = n
        self.classifier = nn.Linear(n, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map after the final batch norm (before the last ReLU), B×C×h×w."""
        return self.features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """ReLU → global average pool → linear classifier."""
        out = F.adaptive_avg_pool2d(F.relu(features), 1).flatten(1)
        return self.classifier(out)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def resolve_config(arch: str = "densenet121", *, se: str = "layer", reduction: int = 16,
                   num_classes: int | None = None, **options: Any) -> ModelConfig:
    """Config for a named ``arch`` with ``options`` overriding its fields.

    ``num_classes=None`` keeps the arch's default (1000 for ImageNet layouts, 10 for CIFAR ones).
    ``depth``/``growth`` select a DenseNet-BC layout; ``small_inputs=True`` picks the 3x3 stem.
    """
    if arch not in ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    params: dict[str, Any] = dict(ARCHS[arch])
    if arch == "densenet_bc" or "depth" in options:
        params.update(densenet_bc_config(options.pop("depth", 100), options.pop("growth", 12)))
    if "growth" in options:
        params["growth_rate"] = options.pop("growth")
    if "small_inputs" in options:
        params["stem"] = "small" if options.pop("small_inputs") else "imagenet"
    params.update(se=se, se_reduction=reduction, arch=arch)
    if num_classes is not None:
        params["num_classes"] = num_classes
    params.update(options)
    return ModelConfig(**params)


def build_model(arch: str = "densenet121", *, se: str = "layer", reduction: int = 16,
                num_classes: int | None = None, **options: Any) -> SEDenseNet:
    """Build an SE-DenseNet (``se="none"`` gives the baseline with torchvision's parameter count).

    Options are :class:`ModelConfig` fields (``se_hidden``, ``se_bias``, ``memory_efficient``,
    ``drop_rate``, ``stem``, ``growth_rate`` …) plus ``depth``/``growth``/``small_inputs`` shortcuts.
    """
    cfg = resolve_config(arch, se=se, reduction=reduction, num_classes=num_classes, **options)
    return build_from_config(cfg)


def build_from_config(cfg: ModelConfig) -> SEDenseNet:
    """Build a model from a :class:`ModelConfig`, warning where the SE width had to be clamped."""
    if cfg.se != "none" and cfg.se_hidden == 0:
        warnings.warn("se_hidden=0 makes every SE gate a constant sigmoid(0) = 0.5 (a dead SE block)",
                      stacklevel=3)
    if cfg.se != "none" and cfg.se_hidden is None:
        widths = se_input_widths(cfg)
        dead = sorted({c for c in widths if c // cfg.se_reduction == 0})
        if dead:
            warnings.warn(
                f"SE hidden width C // reduction = 0 for C={dead} (reduction {cfg.se_reduction}); "
                "clamped to 1 so the SE block is not dead. Pass se_hidden= or a smaller reduction.",
                stacklevel=3,
            )
    return SEDenseNet(cfg)


def se_input_widths(cfg: ModelConfig) -> list[int]:
    """Channel count seen by each SE layer, in forward order."""
    widths: list[int] = []
    n = cfg.num_init_features
    for i, num_layers in enumerate(cfg.block_config, start=1):
        if cfg.se == "layer":
            widths.extend([cfg.growth_rate] * num_layers)
        n += num_layers * cfg.growth_rate
        if cfg.se == "block" or (cfg.se == "final" and i == len(cfg.block_config)):
            widths.append(n)
        if i != len(cfg.block_config):
            n = int(n * cfg.compression)
    return widths


def count_parameters(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def with_se(cfg: ModelConfig, se: str) -> ModelConfig:
    """Same architecture with a different SE placement (``"none"`` = baseline)."""
    return replace(cfg, se=se)
