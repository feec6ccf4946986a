"""The shipped demo models and example images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from sedensenet import load_checkpoint
from sedensenet.data.demo import DEMO_CLASSES
from sedensenet.data.images import DemoShapes, eval_transform, load_image, preprocess
from sedensenet.training.evaluate import confusion_matrix

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"se": ROOT / "assets" / "models" / "demo-se.pt", "baseline": ROOT / "assets" / "models" / "demo-baseline.pt"}
EXAMPLES = ROOT / "assets" / "examples"


@pytest.mark.parametrize("variant", ["se", "baseline"])
def test_shipped_model_loads_small_with_metadata_and_95_percent(variant: str) -> None:
    path = MODELS[variant]
    assert path.stat().st_size <= 5 * 2**20
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.config.se == ("layer" if variant == "se" else "none")
    assert loaded.classes == list(DEMO_CLASSES)
    history = loaded.meta.history
    assert len(history) >= 5 and all("val_acc" in h and "train_loss" in h for h in history)
    assert loaded.meta.train_args["demo_seed"] == 0  # trained on seed 0, validated on seed 1
    fresh = DemoShapes(800, seed=424242, transform=eval_transform(loaded.input_size, loaded.meta.mean,
                                                                  loaded.meta.std))
    cm = confusion_matrix(loaded.model, DataLoader(fresh, batch_size=200), loaded.device, 8, progress=False)
    accuracy = float(cm.diag().sum() / cm.sum())
    assert accuracy >= 0.95, accuracy


def test_pair_was_trained_identically() -> None:
    se, base = (load_checkpoint(p, device="cpu") for p in MODELS.values())
    a, b = dict(se.meta.train_args), dict(base.meta.train_args)
    assert a.pop("se") == "layer" and b.pop("se") == "none"
    a.pop("out"), b.pop("out")
    assert a == b


def test_examples_cover_every_class_with_labels_and_a_disagreement() -> None:
    labels = json.loads((EXAMPLES / "labels.json").read_text())
    files = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
    assert 10 <= len(files) <= 20
    assert sorted(labels) == files
    assert {v["label"] for v in labels.values() if v["label"]} == set(DEMO_CLASSES)
    se, base = (load_checkpoint(p, device="cpu") for p in MODELS.values())
    disagreements = 0
    for name, info in labels.items():
        img = load_image(EXAMPLES / name)
        if info["label"] is None:
            assert img.size[0] >= 200  # the real photograph
            continue
        with torch.inference_mode():
            x = preprocess([img], se.meta)
            s, b = int(se.model(x).argmax()), int(base.model(x).argmax())
        assert DEMO_CLASSES[s] == info["se_prediction"] and DEMO_CLASSES[b] == info["baseline_prediction"]
        disagreements += s != b
    assert disagreements >= 1
