"""SE vs baseline agreement measures against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sedensenet.analysis.compare import js_divergence, map_agreement, prediction_agreement, top_fraction_iou


def test_js_divergence_hand_values() -> None:
    p, q = torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])
    # m = (0.75, 0.25); KL(p‖m) = log2(4/3); KL(q‖m) = ½·log2(2/3) + ½·log2(2)
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert js_divergence(p, q) == pytest.approx(expected, abs=1e-9)
    assert js_divergence(q, p) == pytest.approx(expected, abs=1e-9)  # symmetric
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-9)
    assert js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(1.0, abs=1e-9)


def test_top_fraction_iou_hand_values() -> None:
    a = np.arange(10, dtype=float)  # top 20 %: indices {9, 8}
    b = np.array([0, 0, 0, 0, 0, 0, 0, 5, 0, 9], dtype=float)  # top 20 %: {9, 7}
    assert top_fraction_iou(a, b, 0.2) == pytest.approx(1 / 3)  # |{9}| / |{7, 8, 9}|
    assert top_fraction_iou(a, a, 0.2) == 1.0
    assert top_fraction_iou(a, -a, 0.2) == 0.0


def test_prediction_agreement() -> None:
    classes = ["cat", "dog", "fox"]
    p, q = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.2, 0.7, 0.1])
    doc = prediction_agreement(p, q, classes)
    assert doc["top1_se"] == "cat" and doc["top1_baseline"] == "dog" and doc["top1_agree"] is False
    assert doc["total_variation"] == pytest.approx(0.5)  # ½(|0.5| + |−0.5| + 0)
    assert doc["js_divergence"] == pytest.approx(js_divergence(p, q))
    assert prediction_agreement(p, p, classes)["top1_agree"] is True


def test_map_agreement_uses_magnitudes() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 8))
    same_magnitude = -a  # opposite sign, same |map|: identical importance ranking
    doc = map_agreement(a, same_magnitude)
    assert doc["spearman"] == pytest.approx(1.0) and doc["top10_iou"] == 1.0
    shuffled = rng.permutation(np.abs(a).ravel()).reshape(8, 8)
    assert map_agreement(a, shuffled)["spearman"] < 0.5
