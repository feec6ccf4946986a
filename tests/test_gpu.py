"""CUDA checks (run on a GPU machine with ``pytest -m gpu``; skipped with the reason elsewhere).

Every value is compared with the CPU result of the same weights and inputs, not only shapes: fp32 on the GPU
must match the CPU to float32 round-off; AMP (bf16, or fp16 where bf16 is unsupported) is allowed a stated
tolerance on the excitations, which the test prints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MEAN, STD, demo_batch, tiny

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.analysis.attribution import attribute
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.stats_run import run_statistics
from sedensenet.data.demo import DEMO_CLASSES
from sedensenet.data.images import eval_transform
from sedensenet.data.labelled import LabelledDemo

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[1]
AMP_EXCITATION_TOL = 0.02  # max |AMP − fp32| of any gate value (gates lie in 0…1); bf16 keeps ~3 significant digits


@pytest.fixture
def pair(tmp_path: Path):
    model = tiny("layer")
    path = save_checkpoint(tmp_path / "m.pt", model, {"classes": list(DEMO_CLASSES), "input_size": 64})
    loaded = load_checkpoint(path, device="auto")
    assert loaded.device.type == "cuda"
    return model, loaded


def test_fp32_capture_on_cuda_matches_cpu(pair) -> None:
    model, loaded = pair
    x, _ = demo_batch(4)
    cpu = capture_excitations(model, x, precision="fp32")
    gpu = capture_excitations(loaded.model, x, precision="fp32")
    torch.testing.assert_close(gpu.logits, cpu.logits, rtol=1e-3, atol=1e-4)
    for a, b in zip(gpu.records, cpu.records, strict=True):
        torch.testing.assert_close(a.squeeze, b.squeeze, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(a.excitation, b.excitation, rtol=1e-3, atol=1e-4)


def test_amp_capture_is_close_to_fp32(pair) -> None:
    model, loaded = pair
    x, _ = demo_batch(8)
    ref = capture_excitations(model, x, precision="fp32")
    amp = capture_excitations(loaded.model, x)  # default: AMP on CUDA
    assert amp.logits.dtype == torch.float32
    diffs = [float((a.excitation - b.excitation).abs().max()) for a, b in zip(amp.records, ref.records, strict=True)]
    dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    print(f"\nAMP ({dtype}) vs fp32 CPU: max |Δ excitation| {max(diffs):.5f}, mean over layers "
          f"{np.mean(diffs):.5f}; max |Δ logit| {float((amp.logits - ref.logits).abs().max()):.5f}")
    assert max(diffs) <= AMP_EXCITATION_TOL
    assert (amp.logits.argmax(1) == ref.logits.argmax(1)).float().mean() >= 0.75


@pytest.mark.parametrize("method", ["saliency", "gradcam", "integrated_gradients"])
def test_attribution_maps_on_cuda_match_cpu(pair, method: str) -> None:
    model, loaded = pair
    x, y = demo_batch(2)
    with torch.autocast("cuda", dtype=torch.bfloat16):  # attribution must stay fp32 even inside autocast
        m_gpu = attribute(loaded.model, x, method, int(y[0]), steps=8, mean=MEAN, std=STD)[0].map
    m_cpu = attribute(model, x, method, int(y[0]), steps=8, mean=MEAN, std=STD)[0].map
    assert m_gpu.shape == m_cpu.shape == (64, 64)
    scale = float(np.abs(m_cpu).max())
    assert scale > 0
    np.testing.assert_allclose(m_gpu, m_cpu, atol=2e-3 * scale, rtol=0)


def test_statistics_on_cuda_match_cpu(pair) -> None:
    model, loaded = pair
    data = LabelledDemo(48, 3, eval_transform(64, MEAN, STD))
    cpu, _ = run_statistics(model, data, list(DEMO_CLASSES), input_size=64, batch_size=16, progress=False)
    fp32, _ = run_statistics(loaded.model, data, list(DEMO_CLASSES), input_size=64, batch_size=16,
                             precision="fp32", progress=False)
    amp, _ = run_statistics(loaded.model, data, list(DEMO_CLASSES), input_size=64, batch_size=16, progress=False)
    assert cpu.counts.tolist() == fp32.counts.tolist() == amp.counts.tolist()
    worst = 0.0
    for c, f, a in zip(cpu.layers, fp32.layers, amp.layers, strict=True):
        np.testing.assert_allclose(f.mean, c.mean, atol=1e-4, rtol=0)
        np.testing.assert_allclose(f.std, c.std, atol=1e-4, rtol=0)
        worst = max(worst, float(np.abs(a.mean - c.mean).max()))
    print(f"\nstats AMP vs fp32 CPU: max |Δ class-mean excitation| {worst:.5f}")
    assert worst <= AMP_EXCITATION_TOL


def test_app_sidebar_shows_the_gpu_name(monkeypatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("SEDENSENET_MODELS", raising=False)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    assert not at.exception
    name = torch.cuda.get_device_name()
    assert any(name in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
