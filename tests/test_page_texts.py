"""Texts and colours the pages show: readable diagram labels, plain SE placement sentences, intervention captions."""

from __future__ import annotations

import pytest

from sedensenet import figures
from sedensenet.analysis.interventions import Intervention
from sedensenet.models.densenet import ModelConfig
from sedensenet.models.summary import model_stages, se_placement_text


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert figures.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert figures.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # WCAG's classic example
    assert figures.text_colour("#ffff00") == "#000000" and figures.text_colour("#000080") == "#ffffff"


@pytest.mark.parametrize("se", ["layer", "block", "final"])
def test_every_diagram_label_is_readable_on_its_box(se: str) -> None:
    stages, marks = model_stages(ModelConfig(arch="demo", se=se))
    fig = figures.architecture_diagram(stages, marks)
    boxes = [s for s in fig.layout.shapes]
    labels = list(fig.layout.annotations)
    assert len(boxes) == len(labels) and marks  # one label per box (stage boxes and SE badges)
    for box, label in zip(boxes, labels, strict=True):
        assert figures.contrast_ratio(box.fillcolor, label.font.color) >= 4.5, (label.text, box.fillcolor)


def test_baseline_text_says_no_se_without_se_details() -> None:
    text = se_placement_text(ModelConfig(arch="demo", se="none"))
    assert "baseline" in text and "hidden" not in text.lower() and "bias" not in text.lower() and "//" not in text
    se = se_placement_text(ModelConfig(arch="demo", se="layer", se_reduction=4))
    assert "every dense layer" in se and "÷ 4" in se and "biases off" in se
    fixed = se_placement_text(ModelConfig(arch="demo", se="final", se_hidden=16, se_bias=True))
    assert "16 hidden units" in fixed and "biases on" in fixed


def test_intervention_with_no_channels_picked_says_so() -> None:
    none_picked = Intervention(channels={"features.denseblock1.denselayer1.se": {}})
    assert none_picked.describe() == "no change (no channels picked)" and none_picked.empty
    assert ": ." not in none_picked.describe()
    some = Intervention(channels={"a.se": {}, "b.se": {2: 0.0}})
    assert some.describe() == "b.se: ch 2 → 0" and not some.empty
    assert not Intervention(off="all").empty and Intervention().empty
