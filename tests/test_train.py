"""Training: demo and folder runs, resume, pair fairness, atomic saves under SIGKILL, torchrun, offline CIFAR."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sedensenet import load_checkpoint
from sedensenet.data.datasets import DataError, cifar
from sedensenet.data.demo import make_sample
from sedensenet.training.loop import TrainConfig, train, train_pair

TINY = dict(arch="demo", reduction=2, demo_train=96, demo_val=32, batch_size=16, workers=0, quiet=True,
            limit_batches=3)


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "out": str(tmp_path / "m.pt"), **kw})


def test_demo_run_writes_loadable_checkpoints_with_history(tmp_path: Path) -> None:
    logs: list[str] = []
    result = train(_cfg(tmp_path, epochs=1), log=logs.append)
    assert result.best_path.is_file() and result.last_path.is_file()
    loaded = load_checkpoint(result.best_path, device="cpu")
    assert loaded.classes[:3] == ["circle", "square", "triangle"] and loaded.input_size == 64
    (row,) = loaded.meta.history
    assert row["epoch"] == 1 and {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= set(row)
    assert loaded.meta.train_args["demo_train"] == 96
    assert len(result.batch_fingerprints) == 3  # limit_batches
    assert any("epoch 1/1" in line for line in logs)


def test_resume_continues_the_epoch_count(tmp_path: Path) -> None:
    train(_cfg(tmp_path, epochs=1))
    result = train(_cfg(tmp_path, epochs=3, resume=True))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert [h["epoch"] for h in load_checkpoint(result.last_path, device="cpu").meta.history] == [1, 2, 3]
    # gradient checkpointing is a runtime switch: resuming with it on is the same architecture
    assert len(train(_cfg(tmp_path, epochs=4, resume=True, memory_efficient=True)).history) == 4
    with pytest.raises(ValueError, match="different architecture"):
        train(_cfg(tmp_path, epochs=5, resume=True, se="block"))
    with pytest.raises(FileNotFoundError, match="no .* to resume from"):
        train(_cfg(tmp_path / "other", epochs=2, resume=True))


def test_pair_trains_both_on_identical_batches(tmp_path: Path) -> None:
    logs: list[str] = []
    se, base = train_pair(_cfg(tmp_path, epochs=2), log=logs.append)
    assert len(se.batch_fingerprints) == 6
    assert se.batch_fingerprints == base.batch_fingerprints
    assert load_checkpoint(se.best_path, device="cpu").config.se == "layer"
    assert load_checkpoint(base.best_path, device="cpu").config.se == "none"
    assert base.best_path.name == "m-baseline.pt"
    assert "identical batches: yes" in logs[-1]
    # a different seed changes the data order, so the fingerprint is not trivially constant
    other = train(_cfg(tmp_path / "s1", epochs=1, seed=1))
    assert other.batch_fingerprints != se.batch_fingerprints[:3]


def _image_folder(root: Path, classes: tuple[str, ...] = ("sunny", "rainy"), per_class: int = 6) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(make_sample(3, i * 8 + c, 48).image).save(root / name / f"{i}.jpg")
    return root


def test_image_folder_run_with_val_split(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "photos")
    (root / "rainy" / "notes.txt").write_text("ignored: not an image")
    result = train(_cfg(tmp_path, data=str(root), input_size=32, val_split=0.34, epochs=1, arch="densenet_bc",
                        depth=10, growth=4))
    loaded = load_checkpoint(result.best_path, device="cpu")
    assert loaded.classes == ["rainy", "sunny"] and loaded.input_size == 32
    assert "4 val" in loaded.meta.dataset  # 2 of 6 per class held out


def test_image_folder_with_train_and_val_and_bad_folders(tmp_path: Path) -> None:
    _image_folder(tmp_path / "ds" / "train")
    _image_folder(tmp_path / "ds" / "val", per_class=2)
    result = train(_cfg(tmp_path, data=str(tmp_path / "ds"), input_size=32, epochs=1, arch="densenet_bc", depth=10,
                        growth=4))
    assert load_checkpoint(result.best_path, device="cpu").meta.dataset.endswith("(train/ and val/)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        train(_cfg(tmp_path, data=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="neither 'demo'"):
        train(_cfg(tmp_path, data=str(tmp_path / "missing")))


KILLER = """
import io, sys, time
import torch
from sedensenet import build_model, save_checkpoint

real_save = torch.save


def half_then_wait(obj, f, *args, **kwargs):
    # write the first half of the bytes into save_checkpoint's temp file, tell the parent, then hang: the kill
    # lands while the write is provably unfinished
    buf = io.BytesIO()
    real_save(obj, buf, *args, **kwargs)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    print("mid-write", len(data) // 2, flush=True)
    time.sleep(600)


model = build_model("demo", se="layer", reduction=4)
save_checkpoint(sys.argv[1], model, {"history": [{"epoch": 1}]})
print("saved", flush=True)
torch.save = half_then_wait
save_checkpoint(sys.argv[1], model, {"history": [{"epoch": 1}, {"epoch": 2}]})
"""


def test_process_killed_during_save_leaves_previous_checkpoint_loadable(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saved"
        complete = path.read_bytes()
        tag, written = proc.stdout.readline().split()
        assert tag == "mid-write"
        partial = list(tmp_path.glob(".ckpt.pt.*.tmp"))
        assert len(partial) == 1 and partial[0].stat().st_size == int(written)  # the kill lands mid-write
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == complete  # the previous checkpoint was never touched
    loaded = load_checkpoint(path, device="cpu")
    assert [h["epoch"] for h in loaded.meta.history] == [1]
    assert partial[0].stat().st_size == int(written) < len(complete)  # only the unfinished temp file is left


def test_torchrun_two_process_gloo_run_writes_one_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
           "-m", "sedensenet", "train", "--data", "demo", "--demo-train", "64", "--demo-val", "32", "--epochs", "1",
           "--batch-size", "16", "--workers", "0", "--device", "cpu", "--quiet", "--reduction", "2",
           "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.last.pt", "ddp.pt"]
    history = load_checkpoint(out, device="cpu").meta.history
    assert len(history) == 1
    assert done.stdout.count("epoch 1/1") == 1  # only rank 0 reports


def test_offline_cifar_fails_fast_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDENSENET_OFFLINE", "1")
    with pytest.raises(DataError, match="cifar10 is not in .* cannot be downloaded"):
        cifar("cifar10", tmp_path)
    done = subprocess.run([sys.executable, "-m", "sedensenet", "train", "--data", "cifar100", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SEDENSENET_OFFLINE": "1"})
    assert done.returncode == 2
    assert "cifar100 is not in" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())  # nothing half-downloaded


def test_ema_follows_the_exponential_recurrence_for_weights_and_batchnorm_statistics() -> None:
    import torch
    from torch import nn

    from sedensenet.training.loop import _ema_of, run_epoch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    data = [(torch.randn(8, 3, 6, 6), torch.randint(0, 2, (8,))) for _ in range(5)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    decay = 0.7
    ema = _ema_of(model, decay)
    trajectory: list[dict[str, torch.Tensor]] = []
    optimizer.register_step_post_hook(
        lambda *_: trajectory.append({k: v.detach().clone() for k, v in model.state_dict().items()}))
    run_epoch(model, data, torch.device("cpu"), optimizer=optimizer, cfg=TrainConfig(quiet=True, lr=0.5),
              total_steps=5, ema=ema)
    assert len(trajectory) == 5
    expected = dict(trajectory[0])  # the first update copies, then e ← d·e + (1−d)·p
    for state in trajectory[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * v if v.is_floating_point() else v
                    for k, v in state.items()}
    averaged = ema.module.state_dict()
    for name in ("0.weight", "4.bias", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(averaged[name], expected[name])
    assert not torch.allclose(averaged["0.weight"], trajectory[-1]["0.weight"])  # an average, not the last step


def test_ema_run_validates_selects_and_saves_the_average(tmp_path: Path) -> None:
    import torch
    from torch.utils.data import DataLoader

    from sedensenet.data.datasets import build_datasets

    cfg = _cfg(tmp_path, epochs=1, ema=0.5)
    result = train(cfg)
    best = load_checkpoint(result.best_path, device="cpu")
    last = load_checkpoint(result.last_path, device="cpu")
    ema_state = last.resume["ema"]
    for name, value in best.model.state_dict().items():
        torch.testing.assert_close(value, ema_state[f"module.{name}"])
    raw = last.model.state_dict()
    assert any(not torch.equal(v, raw[k]) for k, v in best.model.state_dict().items() if v.is_floating_point())
    # the history's validation accuracy is the saved model's
    val = build_datasets(cfg).val
    correct = sum(int((best.model(x).argmax(1) == y).sum()) for x, y in DataLoader(val, batch_size=16))
    assert correct / len(val) == pytest.approx(best.meta.history[0]["val_acc"])


def test_ema_resume_continues_the_same_average(tmp_path: Path) -> None:
    import torch

    first = train(_cfg(tmp_path, epochs=1, ema=0.8))
    before = load_checkpoint(first.last_path, device="cpu").resume["ema"]
    resumed = train(_cfg(tmp_path, epochs=2, ema=0.8, resume=True))
    after = load_checkpoint(resumed.last_path, device="cpu").resume["ema"]
    assert int(before["n_averaged"]) == 3 and int(after["n_averaged"]) == 6  # 3 steps per epoch, not restarted
    # the average moved on from where the first run left it
    name = "module.classifier.weight"
    assert not torch.equal(before[name], after[name])
    (tmp_path / "c").mkdir()
    train(_cfg(tmp_path / "c", epochs=1))
    with pytest.raises(ValueError, match="trained without --ema"):
        train(_cfg(tmp_path / "c", epochs=2, ema=0.8, resume=True))
    with pytest.raises(ValueError, match="decay per step in"):
        _cfg(tmp_path, ema=1.0)
