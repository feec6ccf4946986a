"""SE-DenseNet: one DenseNet implementation with Squeeze-and-Excitation at any set of sites.

Module names follow torchvision (``features.conv0``, ``denseblock{i}.denselayer{j}``, ``norm5``,
``classifier``) so torchvision weights load unchanged. SE sites, in forward order, and their module names:

========================  ==========================================  ============================================
site                      where                                        module
========================  ==========================================  ============================================
``stem``                  after the stem                               ``features.se_stem``
``block_input``           at dense block ``i``'s input                 ``features.se_in{i}``
``layer_input``           on a dense layer's concatenated input        ``denseblock{i}.denselayer{j}.se_in``
                          (SE-PRE; later layers still see the
                          unscaled features)
``layer``                 on a dense layer's new features (seed)       ``denseblock{i}.denselayer{j}.se``
``block_output``          at block ``i``'s output, before transition   ``features.se{i}`` (blocks 1…n-1)
``transition_input``      first operation of transition ``i``          ``features.transition{i}.se``
``pre_norm``              after the last block, before the final norm  ``features.se{n}`` (Keras seed)
``post_norm``             after the final norm, before the last ReLU   ``features.se_out``
========================  ==========================================  ============================================

Presets: ``none``; ``layer`` = {layer}; ``block`` = {block_output, pre_norm} (after every block); ``final`` =
{pre_norm}. Each site can have its own width, bias, module variant and block subset (``se_sites``).

In eval mode with autograd on (attribution), no operation in ``forward`` is in place, so forward hooks and
autograd hooks always work; for inference the ReLUs and the SE scale work in place on fresh tensors, and in
training the ReLUs do (as torchvision's do). Gradient checkpointing is a runtime switch
(:meth:`SEDenseNet.set_grad_checkpointing`), not part of the architecture.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from sedensenet.errors import ConfigError

SE_SITES = ("stem", "block_input", "layer_input", "layer", "block_output", "transition_input", "pre_norm",
            "post_norm")
SE_PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "layer": ("layer",),
    "block": ("block_output", "pre_norm"),
    "final": ("pre_norm",),
}
SE_PLACEMENTS = tuple(SE_PRESETS)
# Module variants of the excitation, named by the state_dict keys they produce.
SE_VARIANTS = ("fc", "fc-conv", "fc1fc2", "fc1fc2-conv", "reduce_expand")
SITE_OPTIONS = ("reduction", "hidden", "bias", "variant", "blocks")
STEMS = ("imagenet", "small")
# Sites whose position depends on a block (the block subset filter applies to them).
_BLOCK_SITES = ("block_input", "layer_input", "layer", "block_output", "transition_input")


def parse_se(se: str | Iterable[str]) -> tuple[str, ...]:
    """Sites of ``se``: a preset name, sites joined by ``+`` or an iterable of site names (forward order)."""
    if isinstance(se, str):
        if se in SE_PRESETS:
            return SE_PRESETS[se]
        names = [s.strip() for s in se.split("+") if s.strip()]
    else:
        names = [str(s) for s in se]
    unknown = [s for s in names if s not in SE_SITES]
    if unknown or (isinstance(se, str) and not names):
        raise ConfigError(f"se={se!r} is not an SE placement: choose a preset ({', '.join(SE_PRESETS)}) or sites "
                         f"joined by '+' from {', '.join(SE_SITES)}")
    return tuple(s for s in SE_SITES if s in names)


def canonical_se(se: str | Iterable[str]) -> str:
    """The one string naming a set of sites: the preset when one matches, else sites joined by ``+``."""
    sites = parse_se(se)
    for name, preset in SE_PRESETS.items():
        if sites == preset:
            return name
    return "+".join(sites)


@dataclass(frozen=True)
class SiteSpec:
    """The SE module at one site: hidden width (fixed, or ``channels // reduction``), bias, variant, blocks."""

    reduction: int
    hidden: int | None
    bias: bool
    variant: str
    blocks: tuple[int, ...] | None

    def hidden_for(self, channels: int) -> int:
        """Hidden width for ``channels`` inputs (clamped to ≥ 1)."""
        return self.hidden if self.hidden is not None else max(1, channels // self.reduction)

    def covers(self, block: int | None) -> bool:
        return self.blocks is None or block is None or block in self.blocks


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
    se_variant: str = "fc"
    # Per-site overrides of reduction/hidden/bias/variant/blocks, stored as sorted tuples (hashable, frozen);
    # ``to_dict`` writes {site: {option: value}}.
    se_sites: Any = ()
    arch: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_config", tuple(int(b) for b in self.block_config))
        object.__setattr__(self, "se", canonical_se(self.se))
        if self.stem not in STEMS:
            raise ConfigError(f"stem={self.stem!r} is not known; choose one of {', '.join(STEMS)}")
        if not self.block_config or min(self.block_config) < 1:
            raise ConfigError(f"block_config={self.block_config} needs at least one block of ≥ 1 layer")
        if not 0 < self.compression <= 1:
            raise ConfigError(f"compression={self.compression} must be in (0, 1]")
        if min(self.growth_rate, self.num_init_features, self.bn_size, self.num_classes, self.in_channels) < 1:
            raise ConfigError("growth_rate, num_init_features, bn_size, num_classes and in_channels must be ≥ 1")
        if not 0 <= self.drop_rate < 1:
            raise ConfigError(f"drop_rate={self.drop_rate} must be in [0, 1)")
        object.__setattr__(self, "se_sites", self._normalise_sites(self.se_sites))
        for site in (None, *self.sites):
            spec = self.site_spec(site) if site else None
            reduction, hidden = (spec.reduction, spec.hidden) if spec else (self.se_reduction, self.se_hidden)
            variant = spec.variant if spec else self.se_variant
            where = f" at site {site!r}" if site else ""
            if reduction < 1:
                raise ConfigError(f"se_reduction={reduction}{where} must be ≥ 1")
            if hidden is not None and hidden < 0:
                raise ConfigError(f"se_hidden={hidden}{where} must be ≥ 1 (or None to use the reduction)")
            if variant not in SE_VARIANTS:
                raise ConfigError(f"SE variant {variant!r}{where} is not known; choose one of {', '.join(SE_VARIANTS)}")

    def _normalise_sites(self, raw: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
        items = raw.items() if isinstance(raw, Mapping) else raw
        out = []
        n = len(self.block_config)
        for site, options in items:
            if site not in SE_SITES:
                raise ConfigError(f"se_sites names {site!r}, not a site; sites are {', '.join(SE_SITES)}")
            opts = dict(options)
            bad = sorted(set(opts) - set(SITE_OPTIONS))
            if bad:
                raise ConfigError(f"se_sites[{site!r}] has unknown options {bad}; "
                                  f"options are {', '.join(SITE_OPTIONS)}")
            if opts.get("blocks") is not None:
                blocks = tuple(sorted({int(b) for b in opts["blocks"]}))
                last = n - 1 if site in ("block_output", "transition_input") else n
                if site not in _BLOCK_SITES or not blocks or blocks[0] < 1 or blocks[-1] > last:
                    raise ConfigError(f"se_sites[{site!r}] blocks={list(blocks)}: site {site!r} "
                                     + (f"exists for blocks 1…{last}" if site in _BLOCK_SITES else "has no blocks"))
                opts["blocks"] = blocks
            out.append((site, tuple(sorted(opts.items()))))
        return tuple(sorted(out))

    @property
    def sites(self) -> tuple[str, ...]:
        """SE sites of this model, in forward order (empty for the baseline)."""
        return parse_se(self.se)

    def site_spec(self, site: str) -> SiteSpec:
        """The SE module specification at ``site``: the global ``se_*`` fields with the site's overrides."""
        opts = dict(dict(self.se_sites).get(site, ()))
        return SiteSpec(reduction=int(opts.get("reduction", self.se_reduction)),
                        hidden=opts.get("hidden", self.se_hidden), bias=bool(opts.get("bias", self.se_bias)),
                        variant=str(opts.get("variant", self.se_variant)), blocks=opts.get("blocks"))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON- and ``weights_only``-safe dict."""
        d = asdict(self)
        d["block_config"] = list(self.block_config)
        d["se_sites"] = {site: {k: list(v) if isinstance(v, tuple) else v for k, v in opts}
                         for site, opts in self.se_sites}
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them.

        ``memory_efficient`` (written by older versions) is a runtime switch now and is ignored.
        """
        data = {k: v for k, v in data.items() if k != "memory_efficient"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)

    def se_hidden_for(self, channels: int) -> int:
        """Hidden width of the SE bottleneck for ``channels`` inputs with the global settings (clamped to ≥ 1)."""
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


# ----------------------------------------------------------------------------------------------------------
# Channel arithmetic: the one place that knows how many channels flow where.


@dataclass(frozen=True)
class Stage:
    """One stage of the network in forward order: stem, dense block ``index``, transition ``index``, norm."""

    kind: str
    index: int
    channels_in: int
    channels_out: int
    layers: int = 0


def stages(cfg: ModelConfig) -> Iterator[Stage]:
    """Stem, blocks, transitions and the final norm with their channel counts (the model, SE widths and the
    summary all read this)."""
    n = cfg.num_init_features
    yield Stage("stem", 0, cfg.in_channels, n)
    last = len(cfg.block_config)
    for i, layers in enumerate(cfg.block_config, start=1):
        out = n + layers * cfg.growth_rate
        yield Stage("block", i, n, out, layers)
        n = out
        if i != last:
            out = int(n * cfg.compression)
            yield Stage("transition", i, n, out)
            n = out
    yield Stage("norm", 0, n, n)


@dataclass(frozen=True)
class SESlot:
    """Where one SE module sits: site, block/layer numbers, channels it gates, module name, readable label."""

    site: str
    block: int | None
    layer: int | None
    channels: int
    name: str
    label: str


def se_slots(cfg: ModelConfig) -> list[SESlot]:
    """Every SE module of ``cfg`` in forward order."""
    sites = set(cfg.sites)
    out: list[SESlot] = []

    def add(site: str, block: int | None, layer: int | None, channels: int, name: str, label: str) -> None:
        if site in sites and cfg.site_spec(site).covers(block):
            out.append(SESlot(site, block, layer, channels, name, label))

    last = len(cfg.block_config)
    for st in stages(cfg):
        i = st.index
        if st.kind == "stem":
            add("stem", None, None, st.channels_out, "features.se_stem", "after the stem")
        elif st.kind == "block":
            add("block_input", i, None, st.channels_in, f"features.se_in{i}", f"block {i} input")
            for j in range(1, st.layers + 1):
                prefix = f"features.denseblock{i}.denselayer{j}"
                add("layer_input", i, j, st.channels_in + (j - 1) * cfg.growth_rate, f"{prefix}.se_in",
                    f"layer {i}.{j} input")
                add("layer", i, j, cfg.growth_rate, f"{prefix}.se", f"layer {i}.{j} new features")
            if i != last:
                add("block_output", i, None, st.channels_out, f"features.se{i}", f"block {i} output")
            else:
                add("pre_norm", None, None, st.channels_out, f"features.se{i}", "before the final norm")
        elif st.kind == "transition":
            add("transition_input", i, None, st.channels_in, f"features.transition{i}.se", f"transition {i} input")
        else:
            add("post_norm", None, None, st.channels_out, "features.se_out", "after the final norm")
    return out


def se_input_widths(cfg: ModelConfig) -> list[int]:
    """Channel count seen by each SE layer, in forward order."""
    return [slot.channels for slot in se_slots(cfg)]


# ----------------------------------------------------------------------------------------------------------
# Modules


class ReLU(nn.ReLU):
    """ReLU on a fresh batch-norm output: in place (like torchvision's) for inference and for training, out of
    place for gradients in eval mode — the attribution case, where Captum's module hooks need the input intact."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, inplace=self.training or not torch.is_grad_enabled())


class SELayer(nn.Module):
    """Squeeze (global average pool) → excitation (reduce-ReLU-expand-sigmoid) → scale.

    ``variant`` picks the child names and layer type so public checkpoints load key for key: ``fc``
    (``fc.0``/``fc.2`` Linear, the course seed's), ``fc-conv`` (same names, 1×1 convs), ``fc1fc2`` /
    ``fc1fc2-conv`` (``fc1``/``fc2``), ``reduce_expand`` (``conv_reduce``/``conv_expand`` 1×1 convs).
    """

    def __init__(self, channels: int, hidden: int, bias: bool = False, variant: str = "fc") -> None:
        super().__init__()
        if variant not in SE_VARIANTS:
            raise ConfigError(f"SE variant {variant!r} is not known; choose one of {', '.join(SE_VARIANTS)}")
        self.channels = channels
        self.hidden = hidden
        self.variant = variant
        self.conv = variant.endswith("-conv") or variant == "reduce_expand"

        def layer(c_in: int, c_out: int) -> nn.Module:
            return nn.Conv2d(c_in, c_out, 1, bias=bias) if self.conv else nn.Linear(c_in, c_out, bias=bias)

        self.squeeze = nn.AdaptiveAvgPool2d(1)
        if variant.startswith("fc-") or variant == "fc":
            self.fc = nn.Sequential(layer(channels, hidden), nn.ReLU(), layer(hidden, channels), nn.Sigmoid())
        elif variant.startswith("fc1fc2"):
            self.fc1, self.act, self.fc2, self.gate = layer(channels, hidden), nn.ReLU(), layer(hidden, channels), \
                nn.Sigmoid()
        else:
            self.conv_reduce, self.act, self.conv_expand, self.gate = layer(channels, hidden), nn.ReLU(), \
                layer(hidden, channels), nn.Sigmoid()

    @property
    def reduce(self) -> nn.Module:
        """The C → hidden layer, whatever the variant calls it."""
        if hasattr(self, "fc"):
            return self.fc[0]
        return self.fc1 if hasattr(self, "fc1") else self.conv_reduce

    @property
    def expand(self) -> nn.Module:
        """The hidden → C layer."""
        if hasattr(self, "fc"):
            return self.fc[2]
        return self.fc2 if hasattr(self, "fc2") else self.conv_expand

    def _shape(self, z: Tensor) -> Tensor:
        """B×C squeezed values in the layout the reduce layer takes."""
        return z.reshape(z.shape[0], -1, 1, 1) if self.conv else z.reshape(z.shape[0], -1)

    def hidden_units(self, z: Tensor) -> Tensor:
        """ReLU(reduce(z)) for squeezed values ``z`` (B×C): the bottleneck the Learn page shows, B×hidden."""
        return torch.relu(self.reduce(self._shape(z))).flatten(1)

    def excite(self, z: Tensor) -> Tensor:
        """Gates (B×C×1×1) for squeezed values ``z``."""
        z = self._shape(z)
        gate = self.fc(z) if hasattr(self, "fc") else self.gate(self.expand(self.act(self.reduce(z))))
        return gate.reshape(z.shape[0], -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.excite(self.squeeze(x))
        if torch.is_grad_enabled():
            return x * gate
        # Inference: scale in place (x is a fresh conv/concat/norm output); saves a large allocation per SE layer.
        return x.mul_(gate)


def make_se(cfg: ModelConfig, slot: SESlot) -> SELayer:
    spec = cfg.site_spec(slot.site)
    return SELayer(slot.channels, spec.hidden_for(slot.channels), spec.bias, spec.variant)


class DenseLayer(nn.Module):
    """[SE on the input] BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 bottleneck [SE on the new channels]."""

    def __init__(self, in_features: int, cfg: ModelConfig, se_in: SESlot | None = None,
                 se: SESlot | None = None) -> None:
        super().__init__()
        inter = cfg.bn_size * cfg.growth_rate
        if se_in is not None:  # registered first: state_dict order shows it runs first
            self.se_in = make_se(cfg, se_in)
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = ReLU()
        self.conv1 = nn.Conv2d(in_features, inter, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inter)
        self.relu2 = ReLU()
        self.conv2 = nn.Conv2d(inter, cfg.growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        if se is not None:
            self.se = make_se(cfg, se)
        self.drop_rate = float(cfg.drop_rate)
        self.grad_checkpointing = False

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, features: list[Tensor]) -> Tensor:
        inputs = features
        if hasattr(self, "se_in"):  # SE-PRE: scales this layer's view of the features only
            inputs = [self.se_in(torch.cat(features, 1))]
        if self.grad_checkpointing and self.training and any(t.requires_grad for t in inputs):
            out = cp.checkpoint(self.bottleneck, *inputs, use_reentrant=False)
        else:
            out = self.bottleneck(*inputs)
        out = self.conv2(self.relu2(self.norm2(out)))
        if hasattr(self, "se"):
            out = self.se(out)
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; each sees the concatenation of all earlier outputs."""

    def __init__(self, stage: Stage, cfg: ModelConfig, slots: Mapping[tuple[str, int | None, int | None], SESlot]
                 ) -> None:
        super().__init__()
        for j in range(1, stage.layers + 1):
            layer = DenseLayer(stage.channels_in + (j - 1) * cfg.growth_rate, cfg,
                               slots.get(("layer_input", stage.index, j)), slots.get(("layer", stage.index, j)))
            self.add_module(f"denselayer{j}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """[SE on the input] BN-ReLU-Conv1x1-AvgPool between dense blocks."""

    def __init__(self, in_features: int, out_features: int, se: SELayer | None = None) -> None:
        super().__init__()
        if se is not None:
            self.se = se
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = ReLU()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class SEDenseNet(nn.Module):
    """DenseNet with SE blocks at ``config.sites`` (``se="none"`` is the plain DenseNet baseline)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = cfg = config
        slots = {(s.site, s.block, s.layer): s for s in se_slots(cfg)}

        def se(site: str, block: int | None = None) -> list[tuple[str, nn.Module]]:
            slot = slots.get((site, block, None))
            return [] if slot is None else [(slot.name.removeprefix("features."), make_se(cfg, slot))]

        self.features = nn.Sequential()
        for st in stages(cfg):
            i = st.index
            if st.kind == "stem":
                for name, module in self._stem(cfg) + se("stem"):
                    self.features.add_module(name, module)
            elif st.kind == "block":
                for name, module in se("block_input", i):
                    self.features.add_module(name, module)
                self.features.add_module(f"denseblock{i}", DenseBlock(st, cfg, slots))
                after = se("block_output", i) if i != len(cfg.block_config) else se("pre_norm")
                for name, module in after:
                    self.features.add_module(name, module)
            elif st.kind == "transition":
                trans_se = se("transition_input", i)
                self.features.add_module(f"transition{i}", Transition(st.channels_in, st.channels_out,
                                                                      trans_se[0][1] if trans_se else None))
            else:
                self.features.add_module("norm5", nn.BatchNorm2d(st.channels_out))
                for name, module in se("post_norm"):
                    self.features.add_module(name, module)
                self.num_features = st.channels_out
        self.classifier = nn.Linear(self.num_features, cfg.num_classes)
        self._init_weights()

    @staticmethod
    def _stem(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
        if cfg.stem == "small":
            return [("conv0", nn.Conv2d(cfg.in_channels, cfg.num_init_features, 3, 1, 1, bias=False))]
        return [
            ("conv0", nn.Conv2d(cfg.in_channels, cfg.num_init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(cfg.num_init_features)),
            ("relu0", ReLU()),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        for m in self.modules():
            if isinstance(m, SELayer) and m.conv and m.expand.bias is not None:
                nn.init.constant_(m.expand.bias, 0)

    def set_grad_checkpointing(self, enable: bool = True) -> SEDenseNet:
        """Recompute each dense layer's bottleneck in backward instead of storing it (less memory, ~20 % more
        time in training); a runtime switch, not part of the architecture or the checkpoint."""
        for m in self.modules():
            if isinstance(m, DenseLayer):
                m.grad_checkpointing = bool(enable)
        return self

    @property
    def grad_checkpointing(self) -> bool:
        return any(getattr(m, "grad_checkpointing", False) for m in self.modules() if isinstance(m, DenseLayer))

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map after the final batch norm (and its SE, if any), before the last ReLU, B×C×h×w."""
        return self.features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """ReLU → global average pool → linear classifier."""
        out = F.adaptive_avg_pool2d(F.relu(features), 1).flatten(1)
        return self.classifier(out)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def resolve_config(arch: str = "densenet121", *, se: str | Iterable[str] = "layer", reduction: int = 16,
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
    params.update(se=canonical_se(se), se_reduction=reduction, arch=arch)
    if num_classes is not None:
        params["num_classes"] = num_classes
    params.update(options)
    return ModelConfig(**params)


def build_model(arch: str = "densenet121", *, se: str | Iterable[str] = "layer", reduction: int = 16,
                num_classes: int | None = None, memory_efficient: bool = False, **options: Any) -> SEDenseNet:
    """Build an SE-DenseNet (``se="none"`` gives the baseline with torchvision's parameter count).

    ``se`` is a preset (``none``, ``layer``, ``block``, ``final``), sites joined by ``+`` or a set of sites.
    Options are :class:`ModelConfig` fields (``se_hidden``, ``se_bias``, ``se_variant``, ``se_sites``,
    ``drop_rate``, ``stem``, ``growth_rate`` …) plus ``depth``/``growth``/``small_inputs`` shortcuts;
    ``memory_efficient=True`` switches gradient checkpointing on (see :meth:`SEDenseNet.set_grad_checkpointing`).
    """
    cfg = resolve_config(arch, se=se, reduction=reduction, num_classes=num_classes, **options)
    return build_from_config(cfg).set_grad_checkpointing(memory_efficient)


def build_from_config(cfg: ModelConfig) -> SEDenseNet:
    """Build a model from a :class:`ModelConfig`, warning where the SE width had to be clamped."""
    dead: dict[int, set[int]] = {}
    for site in cfg.sites:
        if cfg.site_spec(site).hidden == 0:
            warnings.warn(f"se_hidden=0 at site {site!r} makes every SE gate a constant sigmoid(0) = 0.5 "
                          "(a dead SE block)", stacklevel=3)
    for slot in se_slots(cfg):
        spec = cfg.site_spec(slot.site)
        if spec.hidden is None and slot.channels // spec.reduction == 0:
            dead.setdefault(spec.reduction, set()).add(slot.channels)
    for reduction, widths in dead.items():
        warnings.warn(
            f"SE hidden width C // reduction = 0 for C={sorted(widths)} (reduction {reduction}); "
            "clamped to 1 so the SE block is not dead. Pass se_hidden= or a smaller reduction.",
            stacklevel=3,
        )
    return SEDenseNet(cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def with_se(cfg: ModelConfig, se: str | Iterable[str]) -> ModelConfig:
    """Same architecture with a different SE placement (``"none"`` = baseline)."""
    return replace(cfg, se=canonical_se(se))
