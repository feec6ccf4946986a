"""Interventions: SE off is a no-op when gates are 1, real interventions move logits, the model is untouched."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from helpers import all_hooks, tiny
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sedensenet.analysis.capture import capture_excitations, find_se_modules
from sedensenet.analysis.interventions import Intervention, intervening, run_intervention


def _saturate_gates(model: nn.Module) -> None:
    """Make every SE gate exactly 1: zero weights and a huge bias on the last linear layer."""
    for se in find_se_modules(model):
        last = nn.Linear(se.module.fc[2].in_features, se.module.fc[2].out_features, bias=True)
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(100.0)
        se.module.fc[2] = last


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 3), se=st.sampled_from(["layer", "block", "final"]))
def test_se_off_is_identity_when_all_gates_are_one(seed: int, batch: int, se: str) -> None:
    model = tiny(se)
    _saturate_gates(model)
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    result = run_intervention(model, x, Intervention(off="all"))
    assert all(torch.all(r.excitation == 1) for r in result.before.records)
    torch.testing.assert_close(result.after.logits, result.before.logits, rtol=0, atol=0)


def test_real_intervention_changes_logits_and_leaves_model_identical() -> None:
    model = tiny("layer")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    result = run_intervention(model, x, Intervention(off="all"))
    assert not torch.allclose(result.after.logits, result.before.logits)
    assert all(torch.all(r.excitation == 1) for r in result.after.records)
    assert all_hooks(model) == 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # the model behaves as before
    torch.testing.assert_close(capture_excitations(model, x).logits, result.before.logits)


def test_layer_and_channel_overrides_touch_only_what_was_asked() -> None:
    model = tiny("layer")
    names = [m.name for m in find_se_modules(model)]
    x = torch.randn(1, 3, 32, 32)
    one = run_intervention(model, x, Intervention(off=(names[2],)))
    for i, (b, a) in enumerate(zip(one.before.records, one.after.records, strict=True)):
        if i == 2:
            assert torch.all(a.excitation == 1)
        elif i < 2:  # layers before the intervention see identical inputs
            torch.testing.assert_close(a.excitation, b.excitation)
    chans = run_intervention(model, x, Intervention(channels={names[0]: {0: 0.0, 3: 0.25}}))
    after, before = chans.after.records[0].excitation[0], chans.before.records[0].excitation[0]
    assert after[0] == 0 and after[3] == pytest.approx(0.25)
    keep = [c for c in range(after.numel()) if c not in (0, 3)]
    torch.testing.assert_close(after[keep], before[keep])
    summary = chans.summary([f"c{i}" for i in range(8)])
    assert summary["intervention"] == f"{names[0]}: ch 0 → 0, ch 3 → 0.25"
    assert {"before", "after", "top1_changed", "largest_changes"} <= set(summary)


def test_bad_interventions_are_clear_errors_and_leave_no_hooks() -> None:
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown SE layer"):
        run_intervention(model, x, Intervention(off=("features.nope",)))
    name = find_se_modules(model)[0].name
    with pytest.raises(ValueError, match="channel 99 is outside"):
        run_intervention(model, x, Intervention(channels={name: {99: 0.0}}))
    assert all_hooks(model) == 0


def test_intervention_in_one_thread_does_not_leak_into_another() -> None:
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32)
    clean = capture_excitations(model, x).logits
    inside, release = threading.Event(), threading.Event()

    def intervene_and_wait():
        with intervening(model, Intervention(off="all")):
            inside.set()
            release.wait(10)
            return model(x).detach()

    with ThreadPoolExecutor(2) as pool:
        fut = pool.submit(intervene_and_wait)
        inside.wait(10)
        other = pool.submit(lambda: capture_excitations(model, x).logits).result()
        release.set()
        changed = fut.result()
    torch.testing.assert_close(other, clean)
    assert not torch.allclose(changed, clean)
    assert all_hooks(model) == 0
