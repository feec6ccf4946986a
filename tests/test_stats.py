"""Class-wise excitation statistics and sanity/faithfulness checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import MEAN, STD, demo_batch, tiny, trained_tiny

from sedensenet.analysis.attribution import attribute, private_replica
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.sanity import deletion_insertion, randomisation_order, randomisation_test, spearman
from sedensenet.analysis.statistics import excitation_stats


def test_stats_match_direct_per_class_mean_and_std() -> None:
    model = tiny("layer")
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 3, 32, 32, generator=g), torch.tensor(lbl)) for lbl in
               ([0, 1, 2, 0, 1], [2, 2, 0, 1, 0], [1, 0, 2, 2, 2])]
    stats = excitation_stats(model, batches, ["a", "b", "c"], progress=False)
    xs = torch.cat([b[0] for b in batches])
    ys = torch.cat([b[1] for b in batches])
    direct = capture_excitations(model, xs)
    assert stats.counts.tolist() == [int((ys == k).sum()) for k in range(3)]
    assert len(stats.layers) == len(direct.records)
    for layer, rec in zip(stats.layers, direct.records, strict=True):
        for k in range(3):
            e = rec.excitation[ys == k].double()
            np.testing.assert_allclose(layer.mean[k], e.mean(0).numpy(), rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(layer.std[k], e.std(0, unbiased=False).numpy(), rtol=1e-4, atol=1e-6)
        expected_spec = np.stack([rec.excitation[ys == k].double().mean(0).numpy() for k in range(3)]).std(0).mean()
        assert layer.specificity == pytest.approx(expected_spec, rel=1e-4)
    assert set(stats.as_dict()) == {"classes", "counts", "layers"}


def test_stats_refuse_baseline_and_empty_data() -> None:
    with pytest.raises(ValueError, match="no SE layers"):
        excitation_stats(tiny("none"), [], ["a"], progress=False)
    with pytest.raises(ValueError, match="empty"):
        excitation_stats(tiny("layer"), [], ["a"], progress=False)


def test_spearman_against_hand_values() -> None:
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 40.0])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1.0)
    # ties: ranks a=[0.5,0.5,2,3], b=[0,1,2,3] → Pearson by hand = 0.9486832980505138
    assert spearman(np.array([1, 1, 2, 3.0]), np.array([1, 2, 3, 4.0])) == pytest.approx(0.9486832980505138)


def test_randomisation_order_is_top_down() -> None:
    order = randomisation_order(tiny("block"))
    assert order[0] == "classifier" and order[1] == "features.norm5"
    assert order.index("features.denseblock3") < order.index("features.denseblock1")
    assert order[-1] == "features.conv0"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_randomisation_decorrelates_maps_of_a_trained_model(method: str) -> None:
    model = trained_tiny()
    x, y = demo_batch(1)
    steps = randomisation_test(model, x, method, int(y[0]), mean=MEAN, std=STD)
    assert [s.layer for s in steps] == randomisation_order(model)
    final = steps[-1].spearman
    assert final < 0.5, [(s.layer, round(s.spearman, 3)) for s in steps]
    # control: the same comparison against a replica whose weights moved by a tiny amount (0.1 % noise) stays
    # highly correlated — the drop above comes from randomising, not from a comparison that is noisy anyway
    original = np.abs(attribute(model, x, method, int(y[0]), mean=MEAN, std=STD)[0].map)
    nudged = private_replica(model)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in nudged.parameters():
            p.add_(1e-3 * p.abs().mean() * torch.randn(p.shape, generator=g))
    near = np.abs(attribute(nudged, x, method, int(y[0]), mean=MEAN, std=STD)[0].map)
    assert not np.array_equal(near, original)
    assert spearman(original, near) > 0.9 > 0.5 > final


@pytest.mark.slow
def test_deletion_insertion_prefers_a_real_map_over_its_reverse() -> None:
    model = trained_tiny()
    x, y = demo_batch(4, seed=123)
    better = 0
    for i in range(4):
        t = int(y[i])
        amap = attribute(model, x[i:i + 1], "integrated_gradients", t, mean=MEAN, std=STD)[0].map
        real = deletion_insertion(model, x[i:i + 1], amap, t, mean=MEAN, std=STD)
        reverse = deletion_insertion(model, x[i:i + 1], -amap, t, mean=MEAN, std=STD)
        assert len(real["deletion"]) == 21 and real["fractions"][0] == 0.0
        # at fraction 0 the input is untouched for deletion and fully baseline for insertion
        p = torch.softmax(model(x[i:i + 1]), 1)[0, t].item()
        assert real["deletion"][0] == pytest.approx(p, rel=1e-4)
        assert real["insertion"][-1] == pytest.approx(p, rel=1e-4)
        better += real["deletion_auc"] < reverse["deletion_auc"]
    assert better >= 3
