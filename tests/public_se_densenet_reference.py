"""An independent re-implementation of a popular public SE-DenseNet (the ``SELayer_0a`` family), used only as
the reference in the parity tests.

The public code is torchvision's DenseNet with SE modules switched on or off by commenting lines; its four
published files differ only in which sites are live. The module names, their registration order and the forward
are reproduced here exactly, because checkpoints written by that code carry them:

- ``features.SELayer_0a`` after ``pool0``;
- ``features.SELayer_{i}a`` before dense block ``i``;
- ``denselayer{j}.selayer`` as the first op of every dense layer (SE-PRE on the concatenated input; the
  dense connection concatenates the *unscaled* input with the new features);
- ``features.SELayer_{i}b`` after block ``i``, before transition ``i`` (blocks 1…n-1);
- ``transition{i}.selayer`` as the first op of a transition;
- ``features.SELayer_0b`` after ``norm5``, before the final ReLU.

SE: ``avg_pool`` → ``fc = Sequential(Linear(C, C // 16), ReLU(inplace), Linear(C // 16, C), Sigmoid)`` (biases
on) → ``x * y``. Head: in-place ReLU → ``avg_pool2d(kernel 7, stride 1)`` (global at 224²) → ``classifier``.
``legacy_order=True`` reproduces the repository's earliest file, where ``SELayer_{i}a`` comes *after* block ``i``
and ``SELayer_{i}b`` after transition ``i`` — same names, other places: only the registration order tells.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = {
    "all": {"stem", "block_in", "layer", "block_out", "transition", "final"},
    "full": {"layer", "transition"},  # dense layer input + transition input
    "layer_input": {"layer"},
    "full_in_loop": {"block_in", "block_out"},  # every block input + block output before each transition
}


class PublicSELayer(nn.Module):
    def __init__(self, channel: int, reduction: int = 16) -> None:
        assert channel > reduction, "the public code asserts channel > reduction"
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channel, channel // reduction), nn.ReLU(inplace=True),
                                nn.Linear(channel // reduction, channel), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.fc(self.avg_pool(x).view(b, c)).view(b, c, 1, 1)
        return x * y


class _DenseLayer(nn.Sequential):
    def __init__(self, n_in: int, growth: int, bn_size: int, se: bool) -> None:
        super().__init__()
        if se:
            self.add_module("selayer", PublicSELayer(n_in))
        self.add_module("norm1", nn.BatchNorm2d(n_in))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", nn.Conv2d(n_in, bn_size * growth, 1, 1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat([x, super().forward(x)], 1)


class _Transition(nn.Sequential):
    def __init__(self, n_in: int, n_out: int, se: bool) -> None:
        super().__init__()
        if se:
            self.add_module("selayer", PublicSELayer(n_in))
        self.add_module("norm", nn.BatchNorm2d(n_in))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(n_in, n_out, 1, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, 2))


class PublicSEDenseNet(nn.Module):
    def __init__(self, sites: set[str], growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000,
                 legacy_order: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, 2, 1)),
        ]))
        if "stem" in sites:
            self.features.add_module("SELayer_0a", PublicSELayer(num_init_features))
        n = num_init_features
        for i, layers in enumerate(block_config):
            if "block_in" in sites and not legacy_order:
                self.features.add_module(f"SELayer_{i + 1}a", PublicSELayer(n))
            block = nn.Sequential()
            for j in range(layers):
                block.add_module(f"denselayer{j + 1}",
                                 _DenseLayer(n + j * growth_rate, growth_rate, bn_size, "layer" in sites))
            self.features.add_module(f"denseblock{i + 1}", block)
            n += layers * growth_rate
            if legacy_order and "block_out" in sites:  # earliest file: after every block, the last included
                self.features.add_module(f"SELayer_{i + 1}a", PublicSELayer(n))
            if i != len(block_config) - 1:
                if "block_out" in sites and not legacy_order:
                    self.features.add_module(f"SELayer_{i + 1}b", PublicSELayer(n))
                self.features.add_module(f"transition{i + 1}",
                                         _Transition(n, n // 2, "transition" in sites))
                n //= 2
                if legacy_order and "block_in" in sites:  # earliest file: after every transition
                    self.features.add_module(f"SELayer_{i + 1}b", PublicSELayer(n))
        self.features.add_module("norm5", nn.BatchNorm2d(n))
        if "final" in sites:
            self.features.add_module("SELayer_0b", PublicSELayer(n))
        self.classifier = nn.Linear(n, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.avg_pool2d(out, kernel_size=7, stride=1).view(features.size(0), -1)
        return self.classifier(out)
