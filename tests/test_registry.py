"""The attribution-method registry: one entry per method, flags that follow Captum, and adding a method is one
entry that the library, the CLI and the app's widgets all pick up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import Deconvolution
from helpers import tiny
from PIL import Image

from sedensenet import save_checkpoint
from sedensenet.analysis.attribution import METHODS, AttributionError, Method, attribute, method_spec
from sedensenet.cli.main import build_parser, main
from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.errors import SedensenetError


def test_entries_are_complete_and_labels_are_not_packed_strings() -> None:
    assert all(name == m.name for name, m in METHODS.items())
    labels = [m.label for m in METHODS.values()]
    assert len(set(labels)) == len(labels)
    for m in METHODS.values():
        assert m.label and m.description and " — " not in m.label + m.description
        assert callable(m.algorithm) and callable(m.defaults)


def test_smoothgrad_flag_follows_captum_families() -> None:
    # Captum's families: perturbation (Occlusion) and layer (LayerGradCam) methods have no input gradient to
    # average; every other method here is a GradientAttribution on the input (GuidedGradCam included).
    assert {n for n, m in METHODS.items() if not m.smoothgrad} == {"occlusion", "gradcam"}
    assert {n for n, m in METHODS.items() if m.needs_layer} == {"gradcam", "guided_gradcam"}
    assert {n for n, m in METHODS.items() if m.upsample} == {"gradcam"}


def test_flags_are_enforced() -> None:
    model, x = tiny("layer"), torch.randn(1, 3, 32, 32)
    with pytest.raises(AttributionError, match="SmoothGrad applies to gradient methods"):
        attribute(model, x, "occlusion", 0, smoothgrad=2)
    with pytest.raises(SedensenetError, match="unknown attribution method 'nope'; choose one of integrated_gradients"):
        method_spec("nope")
    r = attribute(model, x, "guided_gradcam", 0, smoothgrad=2, layer="features.denseblock2")[0]
    assert r.map.shape == (32, 32) and r.raw.shape == (3, 32, 32)  # not upsampled: a pixel-level map


def test_saliency_defaults_are_signed_gradients() -> None:
    # the registry's default kwargs reach Captum: abs=False keeps the sign of the input gradient
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    model(x)[0, 2].backward()
    got = attribute(model, x.detach(), "saliency", 2)[0].raw
    np.testing.assert_allclose(got, x.grad[0].numpy(), rtol=1e-4, atol=1e-7)
    assert (got < 0).any()


@pytest.fixture
def deconvolution(monkeypatch: pytest.MonkeyPatch) -> Method:
    entry = Method("deconvolution", "Deconvolution", "gradients with ReLUs replaced by their deconvnet rule",
                   Deconvolution)
    monkeypatch.setitem(METHODS, entry.name, entry)
    return entry


def test_adding_a_method_is_one_entry(deconvolution: Method, tmp_path: Path, capsys) -> None:
    assert deconvolution.smoothgrad and not deconvolution.needs_layer  # read from Captum's hierarchy
    model = tiny("layer")
    x = torch.randn(1, 3, 32, 32)
    expected = Deconvolution(model).attribute(x.clone().requires_grad_(True), target=3).detach()
    got = attribute(model, x, "deconvolution", 3)[0]
    np.testing.assert_allclose(got.raw, expected[0].numpy(), rtol=1e-5, atol=1e-7)

    explain = next(a for a in build_parser()._subparsers._group_actions[0].choices["explain"]._actions
                   if a.dest == "method")
    assert "deconvolution" in explain.choices and "Deconvolution" in explain.help
    ckpt = save_checkpoint(tmp_path / "m.pt", model, {"classes": list(DEMO_CLASSES), "input_size": 64})
    img = tmp_path / "x.png"
    Image.fromarray(make_sample(1, 2, 64).image).save(img)
    assert main(["explain", str(ckpt), str(img), "--method", "deconvolution", "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "deconvolution" and Path(doc["map_npy"]).is_file()
