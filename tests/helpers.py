"""Small models and a tiny trained model shared by the analysis tests."""

from __future__ import annotations

import functools

import torch
from seed_reference import randomise_bn
from torch import nn

from sedensenet import build_model
from sedensenet.data.images import DemoShapes, eval_transform
from sedensenet.models.densenet import SEDenseNet

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny(se: str = "layer", **options) -> SEDenseNet:
    """A small random SE-DenseNet with non-trivial BN statistics, eval mode."""
    opts = dict(growth_rate=8, block_config=(2, 2, 2), num_init_features=16, num_classes=8, reduction=2)
    opts.update(options)
    return randomise_bn(build_model("demo", se=se, **opts)).eval()


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


@functools.cache
def trained_tiny(se: str = "layer", steps: int = 300) -> SEDenseNet:
    """A tiny model trained for a few seconds on 64² demo shapes (cached per test session)."""
    torch.manual_seed(0)
    model = build_model("demo", se=se, growth_rate=8, block_config=(2, 2, 2), num_init_features=16, reduction=2)
    x, y = demo_batch(1024, seed=5, size=64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (32,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def demo_batch(n: int = 4, seed: int = 99, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    ds = DemoShapes(n, seed=seed, size=size, transform=eval_transform(size, MEAN, STD))
    xs, ys = zip(*(ds[i] for i in range(n)), strict=True)
    return torch.stack(xs), torch.tensor(ys)
