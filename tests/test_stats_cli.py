"""``sedensenet stats``: streaming statistics equal a direct computation; resume, torchrun and stats files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny
from PIL import Image
from torchvision import transforms as T

from sedensenet import save_checkpoint
from sedensenet.analysis.capture import capture_excitations
from sedensenet.analysis.statistics import ExcitationSums
from sedensenet.analysis.stats_file import (
    StatsFileError,
    load_stats,
    save_stats,
    stats_from_meta,
    stats_to_dict,
    stats_to_meta,
)
from sedensenet.analysis.stats_run import StatsRunError, run_statistics, shard_indices
from sedensenet.cli.main import main
from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.data.images import eval_transform
from sedensenet.data.labelled import labelled_data
from sedensenet.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
FOLDER_CLASSES = ("circle", "square", "star")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    save_checkpoint(path, tiny("layer"), {"classes": list(DEMO_CLASSES), "input_size": 48, "mean": MEAN, "std": STD})
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three class folders of generated shapes (different counts per class, sizes, one greyscale)."""
    root = tmp_path_factory.mktemp("data") / "shapes"
    n = 0
    for label, count in zip(FOLDER_CLASSES, (4, 3, 5), strict=True):
        (root / label).mkdir(parents=True)
        for i in range(count):
            sample = make_sample(7, DEMO_CLASSES.index(label) + 8 * i, 56 + 8 * (i % 2))
            img = sample.pil.convert("L") if n == 5 else sample.pil
            img.save(root / label / f"{i}.png")
            n += 1
    return root


def _expected(model: torch.nn.Module, files: list[tuple[Path, int]], size: int = 48) -> list[dict[str, np.ndarray]]:
    """Per-class mean/std per layer, by numpy over one capture of every image (own transform, own grouping)."""
    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(MEAN, STD)])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p, _ in files])
    y = np.array([label for _, label in files])
    cap = capture_excitations(model, x, precision="fp32")
    out = []
    for rec in cap.records:
        e = rec.excitation.numpy().astype(np.float64)
        mean = np.zeros((len(DEMO_CLASSES), rec.channels))
        std = np.zeros_like(mean)
        for k in set(y.tolist()):
            mean[k], std[k] = e[y == k].mean(0), e[y == k].std(0)
        out.append({"name": rec.name, "mean": mean, "std": std})
    return out


def _model(ckpt: Path) -> torch.nn.Module:
    return load_checkpoint(ckpt, device="cpu").model


def _files(folder: Path) -> list[tuple[Path, int]]:
    return [(p, DEMO_CLASSES.index(c)) for c in FOLDER_CLASSES for p in sorted((folder / c).glob("*.png"))]


def _assert_equal(stats, expected, counts: list[int], atol: float = 1e-6) -> None:
    assert stats.counts.tolist() == counts
    assert [layer.name for layer in stats.layers] == [e["name"] for e in expected]
    for layer, exp in zip(stats.layers, expected, strict=True):
        np.testing.assert_allclose(layer.mean, exp["mean"], atol=atol, rtol=0)
        np.testing.assert_allclose(layer.std, exp["std"], atol=atol, rtol=0)
        present = np.array(counts) > 0
        assert layer.specificity == pytest.approx(exp["mean"][present].std(0).mean(), abs=atol)


def test_stats_command_equals_direct_computation(ckpt: Path, folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "stats.json"
    assert main(["stats", str(ckpt), str(folder), "--out", str(out), "--batch-size", "5", "--workers", "0",
                 "--quiet", "--save-every", "1"]) == 0
    stats = load_stats(out)
    counts = [0] * len(DEMO_CLASSES)
    for c, n in zip(FOLDER_CLASSES, (4, 3, 5), strict=True):
        counts[DEMO_CLASSES.index(c)] = n
    _assert_equal(stats, _expected(_model(ckpt), _files(folder)), counts)
    assert "shapes: image folder (12 images)" in stats.description and "m.pt" in stats.description
    assert stats.extra["processes"] == 1 and len(stats.extra["checkpoint_sha256"]) == 64
    assert not list(tmp_path.glob("*.part*"))  # partial sums removed after a complete run
    assert "12 images, 3 classes" in capsys.readouterr().out
    # the same numbers as NPZ
    npz = tmp_path / "stats.npz"
    assert main(["stats", str(ckpt), str(folder), "--out", str(npz), "--workers", "0", "--quiet"]) == 0
    again = load_stats(npz.read_bytes())
    for a, b in zip(stats.layers, again.layers, strict=True):
        np.testing.assert_allclose(a.mean, b.mean, atol=1e-12)


def test_stats_with_split_file_and_unreadable_image(ckpt: Path, folder: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "copy"
    shutil.copytree(folder, data)
    files = _files(data)
    (data / "star" / "broken.png").write_bytes(b"not a png")
    rows = ["path,split"] + [f"{p.relative_to(data)},{'val' if i % 3 else 'test'}" for i, (p, _) in enumerate(files)]
    rows.append("star/broken.png,val")
    (tmp_path / "split.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "val.json"
    assert main(["stats", str(ckpt), str(data), "--split-file", str(tmp_path / "split.csv"), "--split", "val",
                 "--out", str(out), "--batch-size", "3", "--workers", "0", "--quiet", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"] == 1 and "broken.png" in doc["unreadable"][0]
    val = [f for i, f in enumerate(files) if i % 3]
    counts = np.bincount([y for _, y in val], minlength=len(DEMO_CLASSES)).tolist()
    stats = load_stats(out)
    assert stats.skipped == 1 and "split val of split.csv" in stats.description
    _assert_equal(stats, _expected(_model(ckpt), val), counts)


def test_stats_command_errors_are_one_line(ckpt: Path, folder: Path, tmp_path: Path, capsys) -> None:
    cases = [
        ([str(folder), "--out", str(tmp_path / "x.txt")], "use a .json or .npz"),
        ([str(tmp_path / "nowhere")], "neither 'demo' nor an existing image folder"),
        (["demo", "--split-file", "x.csv"], "needs an image folder"),
        ([str(folder), "--split", "val"], "--split needs --split-file"),
    ]
    (tmp_path / "odd" / "giraffe").mkdir(parents=True)
    cases.append(([str(tmp_path / "odd")], "classes ['giraffe'] that the model does not know"))
    for extra, message in cases:
        assert main(["stats", str(ckpt), *extra, "--quiet", "--workers", "0"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    base = tmp_path / "base.pt"
    save_checkpoint(base, tiny("none"), {"classes": list(DEMO_CLASSES), "input_size": 48})
    assert main(["stats", str(base), "demo", "--demo-n", "8", "--quiet", "--workers", "0",
                 "--out", str(tmp_path / "b.json")]) == 2
    assert "no SE layers" in capsys.readouterr().err


def test_interrupted_run_resumes_where_it_stopped(ckpt: Path, folder: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(ckpt, device="cpu")
    data = labelled_data(str(folder), loaded.classes, eval_transform(48, MEAN, STD), 48)
    kwargs = dict(input_size=48, batch_size=2, progress=False, fingerprint="run-a")
    full, _ = run_statistics(loaded.model, data.dataset, loaded.classes, **kwargs)
    part = tmp_path / "s.json.part0of1.npz"

    def stop_after_two(batches: int) -> None:
        if batches == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_statistics(loaded.model, data.dataset, loaded.classes, partial=part, save_every=1,
                       on_batch=stop_after_two, **kwargs)
    saved = ExcitationSums.from_state(np.load(part))
    assert saved.images == 4  # two batches of two
    seen: list[int] = []
    resumed, info = run_statistics(loaded.model, data.dataset, loaded.classes, partial=part, resume=True,
                                   save_every=1, on_batch=seen.append, **kwargs)
    assert len(seen) == 4 and info.resumed == 4 and info.images == 8  # only the remaining 8 images were run
    assert resumed.counts.tolist() == full.counts.tolist()
    for a, b in zip(resumed.layers, full.layers, strict=True):
        np.testing.assert_allclose(a.mean, b.mean, atol=1e-12)
        np.testing.assert_allclose(a.std, b.std, atol=1e-12)
    with pytest.raises(StatsRunError, match="belongs to another run"):
        run_statistics(loaded.model, data.dataset, loaded.classes, partial=part, resume=True,
                       **{**kwargs, "fingerprint": "run-b"})


def test_shards_cover_every_image_once() -> None:
    for n in (0, 1, 7, 12):
        for world in (1, 2, 3, 5):
            shards = [shard_indices(n, r, world) for r in range(world)]
            assert sorted(i for s in shards for i in s) == list(range(n))


def test_partial_sums_merge_to_the_whole(ckpt: Path, folder: Path) -> None:
    """Shards' sums added with merge() equal one pass (what all_reduce does across processes)."""
    loaded = load_checkpoint(ckpt, device="cpu")
    files = _files(folder)
    tf = eval_transform(48, MEAN, STD)
    xs = torch.stack([tf(Image.open(p).convert("RGB")) for p, _ in files])
    ys = torch.tensor([y for _, y in files])
    whole = ExcitationSums(loaded.classes)
    whole.update(capture_excitations(loaded.model, xs).records, ys)
    a, b = ExcitationSums(loaded.classes), ExcitationSums(loaded.classes)
    a.update(capture_excitations(loaded.model, xs[::2]).records, ys[::2])
    b.update(capture_excitations(loaded.model, xs[1::2]).records, ys[1::2])
    merged = a.merge(b).result()
    for x, y in zip(merged.layers, whole.result().layers, strict=True):
        np.testing.assert_allclose(x.mean, y.mean, atol=1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(ckpt: Path, folder: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    common = [str(ckpt), str(folder), "--batch-size", "4", "--workers", "0", "--quiet"]
    assert main(["stats", *common, "--out", str(one)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                           "-m", "sedensenet", "stats", *common, "--out", str(two), "--device", "cpu"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_stats(one), load_stats(two)
    assert b.extra["processes"] == 2
    assert a.counts.tolist() == b.counts.tolist()
    for x, y in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(x.mean, y.mean, atol=1e-6, rtol=0)
        np.testing.assert_allclose(x.std, y.std, atol=1e-6, rtol=0)
    assert not list(tmp_path.glob("*.part*"))


def test_stats_file_round_trip_and_checkpoint_meta(ckpt: Path, folder: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(ckpt, device="cpu")
    data = labelled_data(str(folder), loaded.classes, eval_transform(48, MEAN, STD), 48)
    stats, _ = run_statistics(loaded.model, data.dataset, loaded.classes, input_size=48, progress=False,
                              description="val split of the shapes")
    for suffix in (".json", ".npz"):
        back = load_stats(save_stats(tmp_path / f"s{suffix}", stats))
        assert back.description == "val split of the shapes" and back.classes == stats.classes
        for a, b in zip(back.layers, stats.layers, strict=True):
            np.testing.assert_array_equal(a.mean, b.mean)  # exact: JSON floats and float64 arrays round-trip
            assert a.specificity == b.specificity
    stored = tmp_path / "with-stats.pt"
    save_checkpoint(stored, loaded.model, {**loaded.meta.stored(), "class_statistics": stats_to_meta(stats)})
    again = load_checkpoint(stored, device="cpu")
    back = stats_from_meta(again.meta)
    assert back is not None and back.description == "val split of the shapes"
    np.testing.assert_array_equal(back.layers[-1].std, stats.layers[-1].std)
    assert stats_from_meta(loaded.meta) is None


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(format="other"), "not a sedensenet class-statistics file"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(counts=[1, 2]), "'counts' must be"),
    (lambda d: d.update(counts=[0] * len(d["classes"])), "no images"),
    (lambda d: d["layers"][0].update(mean=[[0.5]]), "has shape"),
    (lambda d: d["layers"][0].update(std=[[-1.0] * d["layers"][0]["channels"]] * len(d["classes"])), "negative"),
    (lambda d: d["layers"][0].update(mean="abc"), "table of numbers"),
    (lambda d: d.update(layers=[]), "'layers' must be"),
])
def test_bad_stats_files_are_refused(ckpt: Path, folder: Path, mutate, message: str) -> None:
    loaded = load_checkpoint(ckpt, device="cpu")
    data = labelled_data(str(folder), loaded.classes, eval_transform(48, MEAN, STD), 48)
    stats, _ = run_statistics(loaded.model, data.dataset, loaded.classes, input_size=48, progress=False)
    doc = stats_to_dict(stats)
    mutate(doc)
    with pytest.raises(StatsFileError, match=message):
        load_stats(json.dumps(doc).encode())


def test_garbage_and_non_finite_stats_files() -> None:
    for data, message in [(b"\x00\x01garbage", "neither a stats JSON"), (b"PK\x03\x04junk", "not a readable"),
                          (b'{"format": "sedensenet-class-statistics", "version": NaN}', "NaN"),
                          (b"[" * 100_000, "neither a stats JSON")]:
        with pytest.raises(StatsFileError, match=message):
            load_stats(data)


def test_only_unreadable_images_is_a_clear_error(ckpt: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad" / "circle").mkdir(parents=True)
    (tmp_path / "bad" / "circle" / "x.png").write_bytes(b"nope")
    assert main(["stats", str(ckpt), str(tmp_path / "bad"), "--out", str(tmp_path / "s.json"), "--quiet",
                 "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "no image could be analysed (1 unreadable), e.g." in err and "x.png" in err


def test_bad_stored_statistics_are_reported_not_fatal(ckpt: Path) -> None:
    from sedensenet.analysis.class_stats import stored_statistics

    loaded = load_checkpoint(ckpt, device="cpu")
    assert stored_statistics(loaded) == (None, None)
    loaded.meta.extra["class_statistics"] = {"format": "sedensenet-class-statistics", "version": 1, "classes": []}
    stats, problem = stored_statistics(loaded)
    assert stats is None and "stored class statistics: 'classes' must be a non-empty list" in problem


def test_shipped_weather_model_statistics_are_read() -> None:
    """The shipped weather model stores its statistics as ``ExcitationStats.as_dict()`` + description (no
    format/version keys): read as version 1, numbers unchanged."""
    from sedensenet.analysis.class_stats import stored_statistics

    path = ROOT / "assets" / "models" / "weather-se.pt"
    if not path.is_file():
        pytest.skip("no shipped weather model")
    loaded = load_checkpoint(path, device="cpu")
    stats, problem = stored_statistics(loaded)
    assert problem is None and stats is not None
    raw = loaded.meta.extra["class_statistics"]
    assert stats.classes == raw["classes"] and stats.counts.tolist() == raw["counts"]
    assert "validation + test" in stats.description
    for layer, want in zip(stats.layers, raw["layers"], strict=True):
        np.testing.assert_array_equal(layer.mean, np.array(want["mean"]))
        assert layer.specificity == pytest.approx(want["specificity"], rel=1e-9)
