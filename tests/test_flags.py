"""Near-constant SE layers are flagged (and only they), and the figures mark them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny

from sedensenet import capture_excitations, figures
from sedensenet.analysis.flags import (
    NEAR_CONSTANT_NOTE,
    gate_spread,
    near_constant_layers,
    near_constant_message,
)


def test_spread_is_the_population_std_over_images_and_channels() -> None:
    e = np.array([[0.2, 0.4], [0.6, 0.8]])
    assert gate_spread(e) == pytest.approx(np.sqrt(np.mean((e - 0.5) ** 2)))  # hand formula
    assert gate_spread(torch.tensor([[0.5, 0.5, 0.5]])) == 0.0
    assert gate_spread([]) == 0.0


def test_threshold_separates_constant_from_informative_layers() -> None:
    rng = np.random.default_rng(0)
    layers = [rng.uniform(0, 1, (3, 12)),  # informative
              0.5 + rng.uniform(-0.005, 0.005, (3, 12)),  # std ≈ 0.003: near-constant
              np.full((1, 12), 0.5),  # exactly constant (dead hidden units: σ(0))
              np.array([[0.49, 0.51] * 6])]  # std exactly 0.01: not below the threshold
    assert near_constant_layers(layers) == [1, 2]
    assert near_constant_layers(layers, threshold=0.02) == [1, 2, 3]
    with pytest.raises(ValueError):
        near_constant_layers(layers, threshold=0)


def test_dead_hidden_units_are_detected_in_a_real_model() -> None:
    model = tiny("layer")
    se = [m for name, m in model.named_modules() if name.endswith(".se")]
    with torch.no_grad():
        se[1].fc[0].weight.zero_()  # dead hidden units: every ReLU output 0, so every gate is σ(0)
    cap = capture_excitations(model, torch.rand(2, 3, 64, 64))
    rows = [r.excitation for r in cap.records]
    assert near_constant_layers(rows) == [1]
    assert torch.allclose(cap.records[1].excitation, torch.full_like(cap.records[1].excitation, 0.5))


def test_message_names_flagged_layers_only() -> None:
    assert near_constant_message(["b1.l1", "b1.l2"], []) is None
    msg = near_constant_message(["b1.l1", "b1.l2", "b1.l3"], [0, 2])
    assert "b1.l1, b1.l3" in msg and "b1.l2" not in msg and NEAR_CONSTANT_NOTE in msg


def test_figures_mark_flagged_layers() -> None:
    names = ["features.denseblock1.denselayer1.se", "features.denseblock1.denselayer2.se"]
    rows = [[0.1, 0.9], [0.5, 0.5]]
    heat = figures.excitation_heatmap(names, rows, flagged=[1])
    assert list(heat.data[0].y) == ["b1.l1", f"{figures.FLAG} b1.l2"]
    assert any("near-constant" in a.text for a in heat.layout.annotations)
    plain = figures.excitation_heatmap(names, rows)
    assert list(plain.data[0].y) == ["b1.l1", "b1.l2"] and not plain.layout.annotations
    depth = figures.depth_summary(names, rows, flagged=[1])
    marker = [t for t in depth.data if "near-constant" in (t.name or "")]
    assert len(marker) == 1 and list(marker[0].x) == ["b1.l2"] and list(marker[0].y) == [0.5]
    assert not [t for t in figures.depth_summary(names, rows).data if "near-constant" in (t.name or "")]


def test_explain_text_marks_near_constant_layers(tmp_path, capsys) -> None:
    from PIL import Image

    from sedensenet import save_checkpoint
    from sedensenet.cli.main import main
    from sedensenet.data.demo import DEMO_CLASSES, make_sample

    model = tiny("layer")
    se = [m for name, m in model.named_modules() if name.endswith(".se")]
    with torch.no_grad():
        se[0].fc[0].weight.zero_()  # the first SE layer's gates are all σ(0)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, {"classes": list(DEMO_CLASSES), "input_size": 64})
    img = tmp_path / "x.png"
    Image.fromarray(make_sample(7, 0, 64).image).save(img)
    assert main(["explain", str(ckpt), str(img), "--method", "saliency", "--device", "cpu",
                 "--out", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    se_lines = [line for line in lines if ".se " in line]
    assert "near-constant" in se_lines[0] and not any("near-constant" in line for line in se_lines[1:])
    assert any(NEAR_CONSTANT_NOTE in line for line in lines)
