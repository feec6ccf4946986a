"""SE capture: equals a manual recomputation, finds SE by structure, thread-safe, leaves no hooks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from helpers import all_hooks, tiny
from seed_reference import SeedDenseNet, randomise_bn
from torch import nn

from sedensenet import load_checkpoint
from sedensenet.analysis.capture import capture_excitations, find_se_modules, se_input
from sedensenet.errors import ConfigError


def _manual(model: nn.Module, x: torch.Tensor, se_names: list[str]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Independent reference: grab each SE module's input, pool it by hand, apply the SE's own fc layers."""
    inputs: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_pre_hook(
        lambda m, a, n=n: inputs.__setitem__(n, a[0].detach().clone())) for n in se_names]
    order: list[str] = []
    for n in se_names:
        handles.append(modules[n].register_forward_hook(lambda m, a, o, n=n: order.append(n)))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    out = []
    for n in order:
        z = inputs[n].mean(dim=(2, 3))
        with torch.no_grad():
            gate = modules[n].fc(z.clone())
        out.append((n, z, gate))
    return out


@pytest.mark.parametrize("se", ["layer", "block", "final"])
def test_capture_equals_manual_recomputation(se: str) -> None:
    model = tiny(se)
    x = torch.randn(3, 3, 48, 48)
    cap = capture_excitations(model, x)
    expected_names = [n for n, m in model.named_modules() if type(m).__name__ == "SELayer"]
    ref = _manual(model, x, expected_names)
    assert [r.name for r in cap.records] == [n for n, _, _ in ref]
    assert len(cap.records) == {"layer": 6, "block": 3, "final": 1}[se]
    for rec, (_, z, gate) in zip(cap.records, ref, strict=True):
        assert rec.squeeze.shape == rec.excitation.shape == (3, rec.channels)
        torch.testing.assert_close(rec.squeeze, z, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rec.excitation, gate, rtol=1e-5, atol=1e-6)
        assert rec.placement == se
    with torch.no_grad():
        torch.testing.assert_close(cap.logits, model(x))
    assert all_hooks(model) == 0


def test_capture_metadata_and_topk() -> None:
    model = tiny("layer")
    cap = capture_excitations(model, torch.randn(2, 3, 32, 32))
    first = cap.records[0]
    assert (first.block, first.layer, first.index) == (1, 1, 0)
    assert [r.index for r in cap.records] == list(range(len(cap.records)))
    top = cap.top_k(3, image=1)
    probs = torch.softmax(cap.logits[1], 0)
    assert [i for i, _ in top] == probs.argsort(descending=True)[:3].tolist()
    assert cap.records[0].as_dict(1)["excitation"] == cap.records[0].excitation[1].tolist()


def test_capture_on_seed_course_model_and_its_loaded_state_dict(tmp_path) -> None:
    seed = randomise_bn(SeedDenseNet(growth_rate=12, block_config=(2, 3), num_init_features=16, num_classes=4))
    seed.eval()
    for m in seed.modules():  # the seed's C//16 = 0 for growth 12: give its SE a real width for this test
        if type(m).__name__ == "SELayer":
            m.fc[0] = nn.Linear(12, 3, bias=False)
            m.fc[2] = nn.Linear(3, 12, bias=False)
    x = torch.randn(2, 3, 32, 32)
    names = [n for n, m in seed.named_modules() if type(m).__name__ == "SELayer"]
    cap = capture_excitations(seed, x)  # the seed's own module classes, found by structure
    ref = _manual(seed, x, names)
    assert len(cap.records) == 5
    for rec, (_, z, gate) in zip(cap.records, ref, strict=True):
        torch.testing.assert_close(rec.squeeze, z, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rec.excitation, gate, rtol=1e-5, atol=1e-6)
    torch.save(seed.state_dict(), tmp_path / "seed.pth")
    loaded = load_checkpoint(tmp_path / "seed.pth", device="cpu")
    cap2 = capture_excitations(loaded.model, x)
    for a, b in zip(cap.records, cap2.records, strict=True):
        torch.testing.assert_close(a.excitation, b.excitation, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cap.logits, cap2.logits, rtol=1e-5, atol=1e-5)


def test_capture_works_under_inference_mode_and_batches() -> None:
    model = tiny("layer")
    x = torch.randn(5, 3, 32, 32)
    with torch.inference_mode():
        cap = capture_excitations(model, x)
    single = capture_excitations(model, x[2:3])
    for a, b in zip(cap.records, single.records, strict=True):
        torch.testing.assert_close(a.excitation[2:3], b.excitation, rtol=1e-5, atol=1e-6)


def test_baseline_has_no_records() -> None:
    cap = capture_excitations(tiny("none"), torch.randn(1, 3, 32, 32))
    assert cap.records == [] and cap.logits.shape == (1, 8)
    assert find_se_modules(tiny("none")) == []


def test_threads_share_one_model_and_get_their_own_results() -> None:
    model = tiny("layer")
    images = [torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(8)]
    alone = [capture_excitations(model, x) for x in images]
    barrier = threading.Barrier(8)

    def worker(i: int):
        barrier.wait()
        return [capture_excitations(model, images[i]) for _ in range(10)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for i, runs in enumerate(results):
        for cap in runs:
            assert len(cap.records) == len(alone[i].records)
            torch.testing.assert_close(cap.logits, alone[i].logits, rtol=1e-5, atol=1e-6)
            for a, b in zip(cap.records, alone[i].records, strict=True):
                torch.testing.assert_close(a.excitation, b.excitation, rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(a.squeeze, b.squeeze, rtol=1e-5, atol=1e-6)
    assert all_hooks(model) == 0


def test_hooks_removed_even_when_forward_fails() -> None:
    model = tiny("layer")
    with pytest.raises(RuntimeError):
        capture_excitations(model, torch.randn(1, 5, 32, 32))  # wrong channel count
    assert all_hooks(model) == 0


def test_se_discovery_is_cached_per_model_and_held_weakly() -> None:
    import gc
    import weakref

    from sedensenet.analysis import capture as capture_module

    model = tiny("layer")
    first = find_se_modules(model)
    calls = []
    original = capture_module._discover
    capture_module._discover = lambda m: calls.append(m) or original(m)
    try:
        again = find_se_modules(model)
        assert calls == [] and [s.module for s in again] == [s.module for s in first]  # no second walk
        other = tiny("block")
        assert [s.name for s in find_se_modules(other)] == ["features.se1", "features.se2", "features.se3"]
        assert calls == [other]  # a new model is walked once
    finally:
        capture_module._discover = original
    again.clear()
    assert len(find_se_modules(model)) == len(first)  # callers get their own list
    ref = weakref.ref(model)
    del model, first, again, other
    gc.collect()
    assert ref() is None  # the cache does not keep a model alive


def test_forget_se_modules_after_replacing_a_layer() -> None:
    from sedensenet.analysis.capture import forget_se_modules
    from sedensenet.models.densenet import SELayer

    model = tiny("layer")
    layer = model.features.denseblock1.denselayer1
    assert find_se_modules(model)[0].module is layer.se
    layer.se = SELayer(layer.se.fc[0].in_features, 2)
    forget_se_modules(model)
    assert find_se_modules(model)[0].module is layer.se
    cap = capture_excitations(model, torch.randn(1, 3, 32, 32))
    with torch.no_grad():
        pooled = cap.records[0].squeeze
        torch.testing.assert_close(cap.records[0].excitation, layer.se.fc(pooled))  # the new layer's gate


def test_concurrent_first_discovery_agrees() -> None:
    model = tiny("layer")
    barrier = threading.Barrier(6)

    def worker(_i: int) -> list[str]:
        barrier.wait()
        return [m.name for m in find_se_modules(model)]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(worker, range(6)))
    assert all(r == results[0] for r in results) and len(results[0]) == 6


def test_se_input_is_the_feature_map_the_se_layer_scales() -> None:
    model = tiny("layer")
    x = torch.randn(2, 3, 32, 32)
    name = "features.denseblock2.denselayer1.se"
    dense_layer = model.features.denseblock2.denselayer1
    seen: list[torch.Tensor] = []
    handle = dense_layer.conv2.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    got = se_input(model, x, name)
    assert got.shape == seen[0].shape == (2, 8, 4, 4)  # growth 8 new channels; 32² input: stem /4, transition /2
    torch.testing.assert_close(got, seen[0])
    gates = capture_excitations(model, x).records[2].excitation
    torch.testing.assert_close(gates, dense_layer.se.fc(got.mean(dim=(2, 3))).detach())
    with pytest.raises(ConfigError, match="is not an SE layer"):
        se_input(model, x, "features.conv0")
    assert all_hooks(model) == 0
