"""Split files: parsing and refusals, real-world odd files, train/val/test kept apart, evaluation on a split."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sedensenet import build_model, load_checkpoint, save_checkpoint
from sedensenet.data.datasets import build_datasets
from sedensenet.data.images import load_image, preprocess
from sedensenet.data.splits import SplitFileError, read_split_file, select
from sedensenet.training.evaluate import evaluate_checkpoint
from sedensenet.training.loop import TrainConfig

WEATHER = Path(__file__).resolve().parents[2] / "shared" / "data" / "weather"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth random colour field (JPEG-friendly), ``w``×``h``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def odd_folder(tmp_path: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    """Two classes of real-world odd files (PNG named .jpg, greyscale, RGBA, 94 px, aspect 0.56 and 3.19) with a
    split file; the test images are corrupt bytes, so any attempt to read them during training fails loudly."""
    root = tmp_path / "photos"
    rows = []
    for c, cls in enumerate(("cloudy", "sunrise")):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            name = f"{cls}{i}.jpg"
            img = _photo([94, 300, 160, 120, 200, 130][i], [120, 94, 286, 120, 130, 130][i], seed=10 * c + i)
            split = ("train", "train", "train", "val", "test", "test")[i]
            target = root / cls / name
            if split == "test":
                target.write_bytes(b"not an image at all")
            elif i == 0:
                img.save(target, format="PNG")  # a PNG named .jpg
            elif i == 1:
                img.convert("L").save(target, format="JPEG")
            elif i == 2:
                img.convert("RGBA").save(target.with_suffix(".png"), format="PNG")
                target = target.with_suffix(".png")
                name = target.name
            else:
                img.save(target, format="JPEG")
            rows.append({"path": f"{cls}/{name}", "class": cls, "split": split, "group": f"{cls}-{i}"})
    csv_path = tmp_path / "split.csv"
    _write_csv(csv_path, rows)
    return root, csv_path, rows


def test_rows_resolve_with_classes_and_splits(odd_folder) -> None:
    root, csv_path, rows = odd_folder
    got = read_split_file(csv_path, root)
    assert [(r.path, r.cls, r.split) for r in got] == [((root / r["path"]).resolve(), r["class"], r["split"])
                                                        for r in rows]
    assert len(select(got, "train")) == 6 and len(select(got, "val")) == 2 and len(select(got, "test")) == 4


def test_class_defaults_to_parent_folder(odd_folder, tmp_path: Path) -> None:
    root, _, rows = odd_folder
    no_class = tmp_path / "noclass.csv"
    _write_csv(no_class, [{"path": r["path"], "split": r["split"]} for r in rows])
    assert [r.cls for r in read_split_file(no_class, root)] == [r["class"] for r in rows]


@pytest.mark.parametrize(("change", "message"), [
    ({"split": "holdout"}, "not one of train, val, test"),
    ({"path": "../outside.jpg"}, "leaves"),
    ({"path": "cloudy/missing.jpg"}, "not found"),
])
def test_bad_rows_are_refused_with_the_line(odd_folder, tmp_path: Path, change, message) -> None:
    root, _, rows = odd_folder
    (tmp_path / "outside.jpg").write_bytes(b"x")
    bad = [dict(rows[0], **change), *rows[1:]]
    path = tmp_path / "bad.csv"
    _write_csv(path, bad)
    with pytest.raises(SplitFileError, match=message) as err:
        read_split_file(path, root)
    assert "line 2" in str(err.value)


def test_missing_column_and_duplicates_are_refused(odd_folder, tmp_path: Path) -> None:
    root, _, rows = odd_folder
    path = tmp_path / "cols.csv"
    _write_csv(path, [{"file": r["path"], "split": r["split"]} for r in rows])
    with pytest.raises(SplitFileError, match=r"lacks the column\(s\) \['path'\]"):
        read_split_file(path, root)
    _write_csv(path, [*rows, rows[0]])
    with pytest.raises(SplitFileError, match="listed twice"):
        read_split_file(path, root)


def test_a_group_that_straddles_splits_is_refused(odd_folder, tmp_path: Path) -> None:
    root, _, rows = odd_folder
    straddle = [dict(r) for r in rows]
    straddle[1]["group"] = straddle[3]["group"]  # a train image in the same group as a val image
    path = tmp_path / "groups.csv"
    _write_csv(path, straddle)
    with pytest.raises(SplitFileError, match="in both 'val' and 'train'|in both 'train' and 'val'"):
        read_split_file(path, root)


def test_odd_files_decode_to_the_right_pixels(odd_folder) -> None:
    root, _, _ = odd_folder
    png_named_jpg = load_image(root / "cloudy" / "cloudy0.jpg")
    assert png_named_jpg.size == (94, 120)
    assert np.array_equal(np.asarray(png_named_jpg), np.asarray(_photo(94, 120, seed=0)))  # lossless PNG
    grey = np.asarray(load_image(root / "cloudy" / "cloudy1.jpg")).astype(int)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    rgba = load_image(root / "cloudy" / "cloudy2.png")
    assert rgba.mode == "RGB" and rgba.size == (160, 286)  # aspect 0.56


def _train_cfg(root: Path, csv_path: Path, tmp_path: Path, **kw) -> TrainConfig:
    return TrainConfig(data=str(root), split_file=str(csv_path), input_size=32, batch_size=4, epochs=1,
                       workers=0, quiet=True, out=str(tmp_path / "m.pt"), **kw)


def test_training_reads_train_and_val_rows_only(odd_folder, tmp_path: Path) -> None:
    root, csv_path, rows = odd_folder
    spec = build_datasets(_train_cfg(root, csv_path, tmp_path))
    want = {split: sorted((root / r["path"]).resolve() for r in rows if r["split"] == split)
            for split in ("train", "val")}
    assert sorted(spec.train.paths) == want["train"] and sorted(spec.val.paths) == want["val"]
    assert spec.classes == ["cloudy", "sunrise"]
    x, y = spec.val[0]
    assert x.shape == (3, 32, 32) and y in (0, 1)
    assert "4 test images never read" in spec.description


def test_train_command_with_split_file_never_touches_test_images(odd_folder, tmp_path: Path) -> None:
    """The test-split files are corrupt: a run that read one would fail."""
    root, csv_path, _ = odd_folder
    out = tmp_path / "w.pt"
    done = subprocess.run([sys.executable, "-m", "sedensenet", "train", "--data", str(root), "--split-file",
                           str(csv_path), "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--workers",
                           "0", "--quiet", "--reduction", "2", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file()


def test_evaluate_on_a_split_matches_a_direct_computation(odd_folder, tmp_path: Path) -> None:
    root, csv_path, rows = odd_folder
    # make the test rows readable for evaluation
    for r in rows:
        if r["split"] == "test":
            _photo(140, 100, seed=len(r["path"])).save(root / r["path"], format="JPEG")
    torch.manual_seed(0)
    model = build_model("demo", se="layer", reduction=2, num_classes=2).eval()
    meta = {"classes": ["cloudy", "sunrise"], "input_size": 32, "mean": MEAN, "std": STD}
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, meta)
    report = evaluate_checkpoint(ckpt, str(root), split_file=csv_path, split="test", device="cpu", progress=False)
    test_rows = [r for r in rows if r["split"] == "test"]
    with torch.no_grad():
        typed = load_checkpoint(ckpt, device="cpu").meta
        preds = [int(model(preprocess([load_image(root / r["path"])], typed)).argmax()) for r in test_rows]
    truth = [meta["classes"].index(r["class"]) for r in test_rows]
    assert report["n"] == len(test_rows) and report["split"] == "test"
    assert report["accuracy"] == pytest.approx(np.mean(np.array(preds) == np.array(truth)))
    cm = np.zeros((2, 2), dtype=int)
    for t, p in zip(truth, preds, strict=True):
        cm[t, p] += 1
    assert report["confusion_matrix"] == cm.tolist()
    assert json.loads(json.dumps(report, allow_nan=False))["n"] == len(test_rows)


@pytest.mark.skipif(not WEATHER.is_dir(), reason="needs ../shared/data/weather (the weather photos are not part "
                                                   "of the repository)")
def test_the_weather_split_is_consistent() -> None:
    rows = read_split_file(WEATHER / "split.csv", WEATHER)
    counts = {s: len(select(rows, s)) for s in ("train", "val", "test")}
    assert counts == {"train": 781, "val": 169, "test": 169}
    assert {r.cls for r in rows} == {"cloudy", "rain", "shine", "sunrise"}
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in groups.values())


def test_letterbox_keeps_the_whole_picture() -> None:
    from sedensenet.data.images import model_input_view

    wide = Image.new("RGB", (300, 100), (255, 0, 0))
    boxed = np.asarray(model_input_view(60, "letterbox")(wide))
    assert boxed.shape == (60, 60, 3)
    assert (boxed[30, :, 0] > 200).all()  # the red band spans the full width
    assert (boxed[2, 30] == (124, 116, 104)).all()  # grey bar above it
    cropped = np.asarray(model_input_view(60, "crop")(wide))
    assert (cropped[..., 0] > 200).all()
    with pytest.raises(ValueError, match="resize must be one of"):
        model_input_view(60, "stretch")
