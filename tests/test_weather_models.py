"""The shipped weather pair: provenance, stored numbers that the library reproduces, informative SE layers."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from sedensenet import load_checkpoint
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.interventions import Intervention, intervening
from sedensenet.analysis.statistics import excitation_stats
from sedensenet.cli.main import build_parser
from sedensenet.data.images import eval_transform, load_image, preprocess
from sedensenet.training.evaluate import evaluate_checkpoint, split_dataset

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"se": ROOT / "assets" / "models" / "weather-se.pt",
          "baseline": ROOT / "assets" / "models" / "weather-baseline.pt"}
EXAMPLES = ROOT / "assets" / "examples" / "weather"
WEATHER = ROOT.parent / "shared" / "data" / "weather"
CLASSES = ["cloudy", "rain", "shine", "sunrise"]
needs_photos = pytest.mark.skipif(not WEATHER.is_dir(), reason="needs ../shared/data/weather (the weather photos "
                                                                 "are not part of the repository)")


def _meta(loaded):
    return loaded.meta if isinstance(loaded.meta, dict) else loaded.meta.as_dict()


@pytest.mark.parametrize("variant", ["se", "baseline"])
def test_shipped_weather_model_is_small_and_carries_its_provenance(variant: str) -> None:
    path = MODELS[variant]
    assert path.stat().st_size <= 10 * 2**20
    loaded = load_checkpoint(path, device="cpu")
    meta = _meta(loaded)
    assert loaded.classes == CLASSES
    assert loaded.config.se == ("layer" if variant == "se" else "none")
    assert "doi:10.17632/4drtyfjtfy.1" in meta["dataset"] and "CC BY 4.0" in meta["dataset"]
    # the stored command parses back into the stored training arguments (data paths made repo-relative)
    program, command, *flags = shlex.split(meta["training_command"])
    assert (program, command) == ("sedensenet", "train") and "--pair" in flags
    args = vars(build_parser().parse_args([command, *flags]))
    assert args["split_file"] == "../shared/data/weather/split.csv"
    stored = {k: v for k, v in meta["train_args"].items() if k not in ("data", "split_file", "out")}
    assert {k: args[k] for k in stored} == {**stored, "se": "layer"}  # one --pair command trains both
    ev = meta["evaluation"]
    assert ev["split"] == "test" and ev["n"] == 169
    cm = np.array(ev["confusion_matrix"])
    assert cm.sum() == 169 and ev["accuracy"] == pytest.approx(np.trace(cm) / 169)
    if variant == "se":
        assert ev["accuracy"] >= 0.94  # the first quick run's level: a shipped model must not fall below it


def test_pair_was_trained_identically() -> None:
    se, base = (_meta(load_checkpoint(p, device="cpu")) for p in MODELS.values())
    a, b = dict(se["train_args"]), dict(base["train_args"])
    assert a.pop("se") == "layer" and b.pop("se") == "none"
    a.pop("out"), b.pop("out")
    assert a == b


def test_stored_class_statistics_are_consistent() -> None:
    meta = _meta(load_checkpoint(MODELS["se"], device="cpu"))
    stats = meta["class_statistics"]
    assert stats["classes"] == CLASSES and sum(stats["counts"]) == 169 + 169
    assert "validation + test" in stats["description"]
    for layer in stats["layers"]:
        mean = np.array(layer["mean"])
        assert mean.shape == (4, layer["channels"]) and ((mean > 0) & (mean < 1)).all()
        assert layer["specificity"] == pytest.approx(float(mean.std(axis=0).mean()), rel=1e-6)


@needs_photos
@pytest.mark.slow
def test_stored_test_accuracy_and_statistics_are_reproduced_from_the_photos() -> None:
    se = load_checkpoint(MODELS["se"], device="cpu")
    meta = _meta(se)
    report = evaluate_checkpoint(MODELS["se"], str(WEATHER), split_file=WEATHER / "split.csv", split="test",
                                 device="cpu", progress=False)
    assert report["accuracy"] == pytest.approx(meta["evaluation"]["accuracy"])
    assert report["confusion_matrix"] == meta["evaluation"]["confusion_matrix"]
    tf = eval_transform(se.input_size, meta["mean"], meta["std"], meta.get("resize", "crop"))
    parts = [split_dataset(se, WEATHER, WEATHER / "split.csv", s, tf) for s in ("val", "test")]
    stats = excitation_stats(se.model, DataLoader(ConcatDataset(parts), batch_size=64), CLASSES, progress=False)
    stored = meta["class_statistics"]["layers"]
    for got, want in zip(stats.layers, stored, strict=True):
        np.testing.assert_allclose(got.mean, np.array(want["mean"]), atol=1e-5)


def _gates_and_inputs(se, split: str, tf) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    ds = split_dataset(se, WEATHER, WEATHER / "split.csv", split, tf)
    gates: dict[str, list[torch.Tensor]] = {}
    xs = []
    for x, _ in DataLoader(ds, batch_size=64):
        xs.append(x)
        for r in capture_excitations(se.model, x).records:
            gates.setdefault(r.name, []).append(r.excitation)
    return {name: torch.cat(v) for name, v in gates.items()}, torch.cat(xs)


@needs_photos
@pytest.mark.slow
def test_every_se_layer_is_informative_or_explained_in_the_readme() -> None:
    """Gate std across the test photos ≥ 0.01 per SE layer; the weaker layers must be exactly those the README
    explains, must not be dead (gates that vary across photos at all), and must act as the README says: pinning
    their gates to their mean over the training photos changes no test prediction."""
    se = load_checkpoint(MODELS["se"], device="cpu")
    meta = _meta(se)
    tf = eval_transform(se.input_size, meta["mean"], meta["std"], meta.get("resize", "crop"))
    test_gates, x = _gates_and_inputs(se, "test", tf)
    spread = {name: float(g.std(0).mean()) for name, g in test_gates.items()}
    weak = [name for name, s in spread.items() if s < 0.01]
    readme = (ROOT / "README.md").read_text()
    start = readme.find("SE layers of the shipped model are nearly inactive")
    paragraph = readme[start:readme.index("\n\n", start)] if start >= 0 else ""
    named = set(re.findall(r"`(denseblock\d+\.denselayer\d+)`", paragraph))
    assert named == {n.removeprefix("features.").removesuffix(".se") for n in weak}, (named, weak)
    if not weak:
        return
    # dead hidden units give every photo the same gates (σ of the bias): std across photos 0, not just small
    assert all(spread[n] > 1e-3 for n in weak), {n: spread[n] for n in weak}
    train_gates, _ = _gates_and_inputs(se, "train", tf)
    pinned = Intervention(channels={n: {c: float(m) for c, m in enumerate(train_gates[n].mean(0))} for n in weak})
    with torch.inference_mode():
        before = se.model(x).argmax(1)
        with intervening(se.model, pinned):
            after = se.model(x).argmax(1)
    assert torch.equal(before, after), f"pinning {weak} changed {int((before != after).sum())} test predictions"


def test_example_photos_have_sources_and_predict_json_parses() -> None:
    labels = {k: v for k, v in json.loads((EXAMPLES / "labels.json").read_text()).items() if not k.startswith("_")}
    files = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix == ".jpg")
    assert sorted(labels) == files and len(files) >= 2
    assert all(info["source"] and info["licence"] for info in labels.values())
    done = subprocess.run([sys.executable, "-m", "sedensenet", "predict", str(MODELS["se"]),
                           *(str(EXAMPLES / f) for f in files), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    se = load_checkpoint(MODELS["se"], device="cpu")
    for row, name in zip(out["predictions"], files, strict=True):
        with torch.inference_mode():
            probs = torch.softmax(se.model(preprocess([load_image(EXAMPLES / name)], se.meta)), 1)[0]
        assert row["top"][0]["class"] == CLASSES[int(probs.argmax())]
        assert row["top"][0]["prob"] == pytest.approx(float(probs.max()), abs=1e-5)


@needs_photos
@pytest.mark.slow
def test_predict_json_works_on_every_test_photo() -> None:
    from sedensenet.data.splits import read_split_file, select

    paths = [str(r.path) for r in select(read_split_file(WEATHER / "split.csv", WEATHER), "test")]
    done = subprocess.run([sys.executable, "-m", "sedensenet", "predict", str(MODELS["se"]), *paths, "--json",
                           "--top", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert len(out["predictions"]) == 169
    truth = {str(r.path): r.cls for r in select(read_split_file(WEATHER / "split.csv", WEATHER), "test")}
    correct = sum(row["top"][0]["class"] == truth[p] for row, p in zip(out["predictions"], paths, strict=True))
    stored = _meta(load_checkpoint(MODELS["se"], device="cpu"))["evaluation"]["accuracy"]
    assert correct / 169 == pytest.approx(stored)
