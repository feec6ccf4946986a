"""Inference precision: fp32 by default off CUDA, autocast on request, attribution always fp32."""

from __future__ import annotations

import pytest
import torch
from helpers import demo_batch, tiny

from sedensenet.analysis.attribution import attribute
from sedensenet.analysis.capture import capture_excitations
from sedensenet.device import amp_dtype

CPU = torch.device("cpu")


def test_amp_dtype_choices() -> None:
    assert amp_dtype(CPU, "auto") is None and amp_dtype(CPU, "fp32") is None
    assert amp_dtype(CPU, "bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        amp_dtype(CPU, "fp16")
    with pytest.raises(ValueError, match="not one of auto, fp32, bf16, fp16"):
        amp_dtype(CPU, "int8")
    if torch.cuda.is_available():
        expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        assert amp_dtype(torch.device("cuda"), "auto") is expected


def test_auto_precision_on_cpu_is_exactly_fp32() -> None:
    model, (x, _) = tiny("layer"), demo_batch(4)
    a, b = capture_excitations(model, x), capture_excitations(model, x, precision="fp32")
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(r.excitation, s.excitation) for r, s in zip(a.records, b.records, strict=True))


def test_bf16_capture_stays_close_to_fp32() -> None:
    """The autocast path (run here on the CPU in bf16): fp32 records, excitations within 0.02 of fp32."""
    model, (x, _) = tiny("layer"), demo_batch(4)
    ref, low = capture_excitations(model, x, precision="fp32"), capture_excitations(model, x, precision="bf16")
    assert low.logits.dtype == torch.float32 and low.records[0].excitation.dtype == torch.float32
    diffs = [float((r.excitation - s.excitation).abs().max()) for r, s in zip(ref.records, low.records, strict=True)]
    assert 0 < max(diffs) < 0.02, diffs  # > 0: the autocast really ran in bf16


def test_attribution_is_fp32_inside_a_callers_autocast() -> None:
    model, (x, y) = tiny("layer"), demo_batch(1)
    ref = attribute(model, x, "saliency", int(y[0]))[0].map
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = attribute(model, x, "saliency", int(y[0]))[0].map
    assert inside.dtype == ref.dtype
    assert (inside == ref).all()
