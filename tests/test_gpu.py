"""CUDA checks (run on a GPU machine with ``pytest -m gpu``; skipped with the reason elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.analysis.attribution import attribute
from sedensenet.analysis.capture import capture_excitations

pytestmark = pytest.mark.gpu


def test_capture_and_attribution_on_cuda_match_cpu(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TF32 would round convolution inputs to 10-bit mantissas; compare true float32 results
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = tiny("layer")
    x = torch.randn(2, 3, 64, 64)
    cpu = capture_excitations(model, x)
    path = save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_checkpoint(path, device="auto")
    assert loaded.device.type == "cuda"
    gpu = capture_excitations(loaded.model, x)
    torch.testing.assert_close(gpu.logits, cpu.logits, rtol=1e-3, atol=1e-4)
    for a, b in zip(gpu.records, cpu.records, strict=True):
        torch.testing.assert_close(a.excitation, b.excitation, rtol=1e-3, atol=1e-4)
    for method in ("saliency", "gradcam", "integrated_gradients"):
        m_gpu = attribute(loaded.model, x, method, 0, steps=8)[0].map
        m_cpu = attribute(model, x, method, 0, steps=8)[0].map
        assert m_gpu.shape == m_cpu.shape == (64, 64)
        scale = float(np.abs(m_cpu).max())
        assert scale > 0, method
        np.testing.assert_allclose(m_gpu, m_cpu, rtol=1e-3, atol=1e-3 * scale, err_msg=method)
