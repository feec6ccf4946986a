"""Figures carry the numbers they are given: trace values, labels and highlights, not just figure types."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sedensenet import figures

NAMES = ["features.denseblock1.denselayer1.se", "features.denseblock1.denselayer2.se", "features.se2"]
EXC = [[0.1, 0.9, 0.5], [0.2, 0.4], [1.0, 0.0, 0.25, 0.75]]
SQ = [[1.0, -2.0, 0.5], [0.3, 0.1], [0.0, 4.0, 1.0, 2.0]]


def test_layer_labels() -> None:
    assert figures.layer_labels(NAMES) == ["b1.l1", "b1.l2", "after b2"]
    assert figures.layer_labels(["head.attention"]) == ["head.attention"]


def test_excitation_heatmap_pads_ragged_rows_with_blanks() -> None:
    trace = figures.excitation_heatmap(NAMES, EXC).data[0]
    z = np.array(trace.z, dtype=float)
    assert z.shape == (3, 4)
    for row, values in zip(z, EXC, strict=True):
        np.testing.assert_array_equal(row[: len(values)], values)
        assert np.isnan(row[len(values):]).all()
    assert list(trace.y) == ["b1.l1", "b1.l2", "after b2"] and list(trace.x) == [0, 1, 2, 3]
    assert (trace.zmin, trace.zmax) == (0, 1)
    assert trace.customdata[2][3] == "features.se2"  # hover names the full layer


def test_channel_bars_values_and_highlights() -> None:
    fig = figures.channel_bars(EXC[2], SQ[2], "after b2", selected=[1, 3])
    bar = fig.data[0]
    assert list(bar.y) == EXC[2] and list(bar.x) == [0, 1, 2, 3] and list(bar.customdata) == SQ[2]
    colours = list(bar.marker.color)
    assert colours[1] == colours[3] != colours[0] == colours[2]
    assert "after b2" in fig.layout.title.text
    (line,) = fig.layout.shapes
    assert (line.y0, line.y1, line.xref) == (0.5, 0.5, "paper")  # the 0.5 reference across the whole plot
    assert [a.text for a in fig.layout.annotations] == ["gate 0.5"]


def test_squeeze_scatter_every_channel_with_its_layer_and_depth() -> None:
    fig = figures.squeeze_scatter(NAMES, SQ, EXC)
    (trace,) = fig.data  # one WebGL trace for every layer
    assert list(trace.x) == [v for s in SQ for v in s] and list(trace.y) == [v for e in EXC for v in e]
    layers, channels = list(trace.text), list(trace.customdata)
    assert layers == [lab for lab, s in zip(["b1.l1", "b1.l2", "after b2"], SQ, strict=True) for _ in s]
    assert channels == [c for s in SQ for c in range(len(s))]
    depth = {lab: col for lab, col in zip(layers, trace.marker.color, strict=True)}
    assert depth == {"b1.l1": 0.0, "b1.l2": 0.5, "after b2": 1.0}  # depth colour, first to last
    assert list(trace.marker.colorbar.ticktext) == ["b1.l1", "b1.l2", "after b2"]


def test_depth_summary_statistics() -> None:
    band_max, band_min, mean = figures.depth_summary(NAMES, EXC).data
    assert list(band_max.y) == [0.9, 0.4, 1.0] and list(band_min.y) == [0.1, 0.2, 0.0]
    assert list(mean.y) == pytest.approx([0.5, 0.3, 0.5])
    # population std by hand: deviations (−0.4, 0.4, 0), (−0.1, 0.1), (0.5, −0.5, −0.25, 0.25)
    assert list(mean.error_y.array) == pytest.approx([math.sqrt(0.32 / 3), 0.1, math.sqrt(0.625 / 4)])


def test_prediction_bars_most_likely_on_top() -> None:
    rows = [{"class": "cat", "prob": 0.7}, {"class": "dog", "prob": 0.2}, {"class": "fox", "prob": 0.1}]
    bar = figures.prediction_bars(rows).data[0]
    assert list(bar.y) == ["fox", "dog", "cat"] and list(bar.x) == [0.1, 0.2, 0.7]
    assert list(bar.text) == ["10.0%", "20.0%", "70.0%"] and bar.orientation == "h"


def test_probability_change_and_class_lines() -> None:
    before, after = figures.probability_change(["a", "b"], [0.6, 0.4], [0.3, 0.7]).data
    assert (before.name, list(before.y), after.name, list(after.y)) == ("as trained", [0.6, 0.4],
                                                                         "with intervention", [0.3, 0.7])
    lines = figures.class_excitation(["a", "b"], [[0.1, 0.2], [0.3, 0.4]], "layer").data
    assert [t.name for t in lines] == ["a", "b"] and [list(t.y) for t in lines] == [[0.1, 0.2], [0.3, 0.4]]
    spec = figures.specificity_by_depth(NAMES, [0.01, 0.02, 0.05]).data[0]
    assert list(spec.x) == ["b1.l1", "b1.l2", "after b2"] and list(spec.y) == [0.01, 0.02, 0.05]


def test_feature_map_and_architecture_diagram() -> None:
    heat = figures.feature_map([[0.0, 1.0], [2.0, 3.0]], "U", zmax=3.0).data[0]
    assert [list(r) for r in heat.z] == [[0.0, 1.0], [2.0, 3.0]] and (heat.zmin, heat.zmax) == (0, 3.0)
    stages = [("stem", "stem", 64), ("block 1", "block", 256), ("classifier", "head", 10)]
    fig = figures.architecture_diagram(stages, ["block 1"])
    texts = [a.text for a in fig.layout.annotations]
    assert "stem<br>64 ch" in texts and "block 1<br>256 ch" in texts and "classifier<br>10 ch" in texts
    badges = [a for a in fig.layout.annotations if a.text == "SE"]
    assert len(badges) == 1 and 1 < badges[0].x < 2  # one SE badge, over block 1 (the second box)
    assert len(fig.layout.shapes) == len(stages) + 1  # a box per stage and the badge
