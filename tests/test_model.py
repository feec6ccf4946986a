"""Model: torchvision parity, SE placements and widths, memory-efficient mode, hooks."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from seed_reference import randomise_bn
from torch import nn

from sedensenet import ModelConfig, SELayer, build_model
from sedensenet.models.densenet import count_parameters, se_input_widths

TORCHVISION_PARAMS = {"densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
                      "densenet161": 28_681_000}


@pytest.mark.parametrize("arch", sorted(TORCHVISION_PARAMS))
def test_baseline_parameter_count_equals_torchvision(arch: str) -> None:
    ours = count_parameters(build_model(arch, se="none"))
    assert ours == TORCHVISION_PARAMS[arch]
    assert ours == count_parameters(getattr(torchvision.models, arch)())


def test_densenet_bc_100_k12_has_paper_size() -> None:
    # Huang et al.: DenseNet-BC (L=100, k=12) has 0.8 M parameters.
    n = count_parameters(build_model("densenet_bc", se="none", depth=100, growth=12))
    assert 0.75e6 < n < 0.8e6


def _se_modules(model: nn.Module) -> list[tuple[str, SELayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, SELayer)]


def test_se_placements_put_se_where_documented() -> None:
    blocks = (6, 12, 24, 16)
    layer = _se_modules(build_model("densenet121", se="layer"))
    assert len(layer) == sum(blocks)
    assert all(m.channels == 32 and m.hidden == 2 and ".denselayer" in n for n, m in layer)
    # DenseNet-121 block outputs by hand: 64+6*32=256; 128+12*32=512; 256+24*32=1024; 512+16*32=1024.
    block = _se_modules(build_model("densenet121", se="block"))
    assert [n for n, _ in block] == ["features.se1", "features.se2", "features.se3", "features.se4"]
    assert [m.channels for _, m in block] == [256, 512, 1024, 1024]
    final = _se_modules(build_model("densenet121", se="final", se_hidden=16, se_bias=True))
    assert [(n, m.channels, m.hidden) for n, m in final] == [("features.se4", 1024, 16)]
    assert final[0][1].fc[0].bias is not None
    assert _se_modules(build_model("densenet121", se="none")) == []
    # final SE sits right before the final norm (Keras seed: after the last block, before BN-ReLU)
    names = [n for n, _ in build_model("densenet121", se="final").features.named_children()]
    assert names[-3:] == ["denseblock4", "se4", "norm5"]


@pytest.mark.parametrize("se", ["layer", "block", "final"])
def test_se_widths_helper_matches_modules(se: str) -> None:
    model = build_model("densenet_bc", se=se, depth=40, growth=12, reduction=4)
    assert [m.channels for _, m in _se_modules(model)] == se_input_widths(model.config)


def test_se_layer_computes_squeeze_excitation_scale() -> None:
    se = SELayer(8, 3, bias=True)
    x = torch.randn(2, 8, 5, 7)
    w1, b1, w2, b2 = se.fc[0].weight, se.fc[0].bias, se.fc[2].weight, se.fc[2].bias
    z = x.mean(dim=(2, 3))
    gate = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])


def test_hidden_width_clamped_with_warning() -> None:
    with pytest.warns(UserWarning, match="clamped to 1"):
        model = build_model("densenet_bc", se="layer", depth=40, growth=12, reduction=16)
    assert {m.hidden for _, m in _se_modules(model)} == {1}  # 12 // 16 == 0 → 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build_model("densenet_bc", se="layer", depth=40, growth=12, reduction=4)
    assert {m.hidden for _, m in _se_modules(model)} == {3}
    fixed = build_model("densenet_bc", se="layer", depth=40, growth=12, se_hidden=16)
    assert {m.hidden for _, m in _se_modules(fixed)} == {16}


def test_invalid_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="placement"):
        build_model("densenet121", se="everywhere")
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="6n\\+4"):
        build_model("densenet_bc", depth=50)


def test_config_round_trips_through_dict() -> None:
    cfg = build_model("seed", se="layer", drop_rate=0.2).config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.num_classes == 10 and cfg.stem == "small" and cfg.num_init_features == 24
    with pytest.raises(ValueError, match="unknown model config keys: bogus"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_forward_features_and_head_compose_to_forward() -> None:
    model = randomise_bn(build_model("densenet_bc", depth=40, se="layer", reduction=4)).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (3, model.num_features, 8, 8)
    torch.testing.assert_close(model.forward_head(feats), model(x))


@pytest.mark.parametrize("se", ["none", "layer", "block", "final"])
def test_memory_efficient_matches_normal_outputs_and_gradients(se: str) -> None:
    normal = randomise_bn(build_model("densenet_bc", depth=40, growth=12, se=se, reduction=4))
    efficient = build_model("densenet_bc", depth=40, growth=12, se=se, reduction=4, memory_efficient=True)
    efficient.load_state_dict(normal.state_dict())
    normal.train()
    efficient.train()
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3])
    outs, grads = [], []
    for model in (normal, efficient):
        out = model(x)
        nn.functional.cross_entropy(out, y).backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    torch.testing.assert_close(outs[0], outs[1])
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_memory_efficient_checkpoint_fires_forward_hooks_once_per_forward() -> None:
    model = build_model("densenet_bc", depth=16, growth=12, se="layer", reduction=4, memory_efficient=True).train()
    calls = []
    model.features.denseblock1.denselayer1.se.register_forward_hook(lambda *a: calls.append(1))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert len(calls) == 1


def test_no_inplace_ops_break_full_backward_hooks() -> None:
    # torchvision's in-place ReLU makes this raise; ours must not.
    model = build_model("densenet_bc", depth=16, growth=12, se="block", reduction=4).eval()
    seen = []
    for m in model.modules():
        if isinstance(m, (nn.ReLU, SELayer, nn.BatchNorm2d)):
            m.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].shape))
    model(torch.randn(2, 3, 32, 32, requires_grad=True)).sum().backward()
    assert seen


def test_drop_rate_is_stochastic_in_training_only() -> None:
    model = build_model("densenet_bc", depth=16, growth=12, se="layer", reduction=4, drop_rate=0.5)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
