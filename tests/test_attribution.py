"""Attributions: every method on SE and baseline models and batches, Grad-CAM size, zero maps, overlays, threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from helpers import all_hooks, tiny
from PIL import Image

from sedensenet.analysis.attribution import (
    METHODS,
    attribute,
    gradcam_layers,
    normalise,
    overlay,
    shared_scale,
)


@pytest.mark.parametrize("se", ["layer", "none"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_on_se_and_baseline_batches(method: str, se: str) -> None:
    model = tiny(se)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    results = attribute(model, x, method, [1, 4], steps=8, samples=4)
    assert [r.target for r in results] == [1, 4]
    for r in results:
        assert r.map.shape == (32, 32)
        assert np.isfinite(r.map).all()
        assert r.all_zero == (not r.map.any())
        if "gradcam" not in method:  # ReLU'd Grad-CAM of a random net may legitimately be all zero
            assert not r.all_zero
        if method != "gradcam":
            assert r.raw.shape == (3, 32, 32)
            np.testing.assert_allclose(r.raw.sum(0), r.map, rtol=1e-5, atol=1e-6)
    assert all_hooks(model) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.grad is not None for p in model.parameters())


def test_saliency_equals_input_gradient() -> None:
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    model(x)[0, 3].backward()
    expected = x.grad[0].sum(0).numpy()
    got = attribute(model, x.detach(), "saliency", 3)[0].map
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)


def test_integrated_gradients_completeness() -> None:
    # IG axiom: attributions sum to f(x) - f(baseline) (approximately, with enough steps)
    model = tiny("layer").double()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    result = attribute(model, x, "integrated_gradients", 2, mean=mean, std=std, steps=128)[0]
    from sedensenet.analysis.attribution import black_baseline

    with torch.no_grad():
        diff = float(model(x)[0, 2] - model(black_baseline(x, mean, std))[0, 2])
    assert result.map.sum() == pytest.approx(diff, rel=0.05, abs=1e-3)


def test_gradcam_upsampled_to_input_size_at_any_layer() -> None:
    model = tiny("block")
    x = torch.randn(1, 3, 48, 40)
    layers = gradcam_layers(model)
    assert "features.norm5" in layers and "features.denseblock1" in layers and "features.se2" in layers
    nonzero = 0
    for layer in layers:
        r = attribute(model, x, "gradcam", 0, layer=layer)[0]
        assert r.map.shape == (48, 40)
        assert (r.map >= 0).all()  # relu_attributions
        nonzero += int(r.map.any())
    assert nonzero >= len(layers) // 2
    with pytest.raises(ValueError, match="not in the model"):
        attribute(model, x, "gradcam", 0, layer="features.nope")


def test_smoothgrad_averages_noisy_gradients_and_rejects_non_gradient_methods() -> None:
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32)
    plain = attribute(model, x, "saliency", 0)[0].map
    smooth = attribute(model, x, "saliency", 0, smoothgrad=6, smoothgrad_std=0.5)[0].map
    assert smooth.shape == plain.shape and not np.allclose(smooth, plain)
    assert attribute(model, x, "saliency", 0, smoothgrad=6, smoothgrad_std=0.0)[0].map == pytest.approx(plain, abs=1e-6)
    with pytest.raises(ValueError, match="SmoothGrad applies to gradient methods"):
        attribute(model, x, "occlusion", 0, smoothgrad=4)
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(model, x, "lime", 0)


def test_all_zero_map_is_guarded() -> None:
    model = tiny("layer")
    with torch.no_grad():
        model.classifier.weight.zero_()  # the score no longer depends on the input
    r = attribute(model, torch.randn(1, 3, 32, 32), "saliency", 0)[0]
    assert r.all_zero
    assert not normalise(r.map).any()
    rgba = overlay(Image.new("RGB", (32, 32), (10, 20, 30)), r.map)
    assert (rgba[..., :3] == (10, 20, 30)).all()  # nothing drawn, no crash, no NaN


def test_overlay_and_shared_scale() -> None:
    img = Image.new("RGB", (64, 48), (0, 0, 0))
    values = np.zeros((24, 32), dtype=np.float32)
    values[:, 16:] = 1.0
    rgba = overlay(img, values, opacity=1.0)
    assert rgba.shape == (48, 64, 4) and rgba.dtype == np.uint8
    assert rgba[:, :20, :3].max() == 0 and rgba[:, 40:, :3].max() > 0  # heat only where the map is
    weak, strong = values * 0.1, values
    scale = shared_scale([weak, strong])
    assert scale == pytest.approx(1.0)
    assert normalise(weak, scale=scale).max() == pytest.approx(0.1)
    assert normalise(weak).max() == pytest.approx(1.0)  # per-image scaling would hide the difference
    signed = normalise(np.array([[-2.0, 1.0]]), sign="signed")
    assert signed.tolist() == [[-1.0, pytest.approx(0.5, abs=0.01)]]
    with pytest.raises(ValueError, match="sign must be"):
        normalise(values, sign="up")


@pytest.mark.parametrize("method", ["guided_backprop", "deeplift", "integrated_gradients"])
def test_attribution_under_concurrency_equals_alone(method: str) -> None:
    from sedensenet.analysis.capture import capture_excitations

    model = tiny("layer")
    images = [torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    alone = [attribute(model, x, method, 2, steps=8)[0].map for x in images]
    caps_alone = [capture_excitations(model, x) for x in images]
    barrier = threading.Barrier(8)

    def work(i: int):
        barrier.wait()
        if i % 2:  # captures interleave with attributions on the same shared model
            return [capture_excitations(model, images[i // 2]) for _ in range(3)]
        return [attribute(model, images[i // 2], method, 2, steps=8)[0].map for _ in range(2)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for i, res in enumerate(results):
        for item in res:
            if i % 2:
                torch.testing.assert_close(item.records[-1].excitation, caps_alone[i // 2].records[-1].excitation)
            else:
                np.testing.assert_allclose(item, alone[i // 2], rtol=1e-4, atol=1e-6)
    assert all_hooks(model) == 0


def test_pooled_copies_share_weights_are_private_and_bounded() -> None:
    """Attribution runs on pooled copies that share the model's weight storage (no copy), never on a copy another
    caller holds, and come back hook-free; a copy that no longer shares the weights is replaced."""
    from sedensenet.analysis.attribution import MAX_POOLED, POOL_ATTR, borrowed_replica, private_replica

    model = tiny("layer")
    weights = [p.data_ptr() for p in model.parameters()]
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with borrowed_replica(model) as a, borrowed_replica(model) as b:
        assert a is not b and a is not model
        assert [p.data_ptr() for p in a.parameters()] == weights  # shared storage, new modules
        assert not any(p.requires_grad for p in a.parameters()) and all(p.requires_grad for p in model.parameters())
        a.features.register_forward_hook(lambda *args: None)  # a leftover hook must not survive the pool
    pool = model.__dict__[POOL_ATTR]
    assert {id(a), id(b)} == {id(t) for t in pool} and all_hooks(a) == 0
    with borrowed_replica(model) as again:
        assert again is b or again is a  # reused, not rebuilt
    held = [borrowed_replica(model) for _ in range(MAX_POOLED + 2)]
    for cm in held:
        cm.__enter__()
    for cm in held:
        cm.__exit__(None, None, None)
    assert len(model.__dict__[POOL_ATTR]) == MAX_POOLED
    # the deep copy (sanity checks randomise it) owns its weights and carries no pool
    own = private_replica(model)
    assert POOL_ATTR not in own.__dict__ and own.features.conv0.weight.data_ptr() != weights[0]
    # new weights (e.g. a reload into the same model object): the stale copies are not used
    before = attribute(model, x, "saliency", 1)[0].map
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data * 1.5  # new storage
    expected = attribute(private_replica(model), x, "saliency", 1)[0].map
    after = attribute(model, x, "saliency", 1)[0].map
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(after, before)
