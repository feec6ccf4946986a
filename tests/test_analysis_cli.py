"""``predict`` / ``explain`` CLI: the JSON schemas documented in README, files written, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny
from PIL import Image

from sedensenet import save_checkpoint
from sedensenet.analysis.capture import Capture
from sedensenet.analysis.pipeline import resolve_target
from sedensenet.cli.main import main
from sedensenet.data.demo import DEMO_CLASSES, make_sample


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "m.pt", tiny("layer"), {"classes": list(DEMO_CLASSES), "input_size": 64})


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(make_sample(7, i, 80).image).save(p)
        paths.append(p)
    return paths


def test_predict_json_schema(ckpt: Path, images: list[Path], capsys) -> None:
    assert main(["predict", str(ckpt), *map(str, images), "--top", "3", "--json", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"checkpoint", "device", "se", "scores", "predictions"}
    assert doc["scores"] == "softmax"  # single-label demo model; multi-label heads give "sigmoid"
    assert [p["image"] for p in doc["predictions"]] == [str(p) for p in images]
    for pred in doc["predictions"]:
        assert len(pred["top"]) == 3
        assert set(pred["top"][0]) == {"index", "class", "prob"}
        probs = [t["prob"] for t in pred["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(t["class"] == DEMO_CLASSES[t["index"]] for t in pred["top"])


def test_explain_json_schema_and_files(ckpt: Path, images: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["explain", str(ckpt), str(images[0]), "--method", "saliency", "--target", "star", "--json",
                 "--out", str(out), "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"checkpoint", "image", "device", "se", "predictions", "target", "method", "map_npy",
                        "overlay_png", "map", "se_records"}
    assert doc["target"] == {"index": DEMO_CLASSES.index("star"), "class": "star"}
    amap = np.load(doc["map_npy"])
    assert amap.shape == (64, 64) and doc["map"]["shape"] == [64, 64]
    assert doc["map"]["max"] == pytest.approx(float(amap.max()))
    png = Image.open(doc["overlay_png"])
    assert png.size == (256, 256)  # the 80 px image shown at a readable size, not the 64 px model input
    assert len(doc["se_records"]) == 6
    rec = doc["se_records"][0]
    assert set(rec) == {"name", "index", "block", "layer", "placement", "site", "label", "channels", "squeeze",
                        "excitation"}
    assert len(rec["excitation"]) == rec["channels"] == 8
    assert all(0 <= e <= 1 for e in rec["excitation"])


def test_explain_text_and_bad_inputs(ckpt: Path, images: list[Path], tmp_path: Path, capsys) -> None:
    assert main(["explain", str(ckpt), str(images[1]), "--method", "gradcam", "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 0
    assert "SE layers" in capsys.readouterr().out
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a not really")
    assert main(["predict", str(ckpt), str(bad)]) == 2
    assert "could not be read as an image" in capsys.readouterr().err
    assert main(["explain", str(ckpt), str(images[0]), "--target", "zebra", "--out", str(tmp_path / "o")]) == 2
    assert "not 'pred', 'topK'" in capsys.readouterr().err


def test_resolve_target_forms() -> None:
    import torch

    cap = Capture(logits=torch.tensor([[0.1, 3.0, 2.0]]))
    classes = ["a", "b", "c"]
    assert resolve_target(None, cap, classes) == 1
    assert resolve_target("pred", cap, classes) == 1
    assert resolve_target("top2", cap, classes) == 2
    assert resolve_target("0", cap, classes) == 0
    assert resolve_target("c", cap, classes) == 2
    with pytest.raises(ValueError, match="outside"):
        resolve_target(7, cap, classes)
    with pytest.raises(ValueError, match="has 3 classes"):
        resolve_target("top9", cap, classes)
