"""Reading a checkpoint's training history: every epoch, the best one, and honesty about older files."""

from __future__ import annotations

from pathlib import Path

import torch

from sedensenet.training.history import best_epoch_of, run_history

ROWS = [{"epoch": i + 1, "val_acc": a, "train_loss": 1.0 / (i + 1)} for i, a in enumerate([0.2, 0.6, 0.9, 0.9, 0.7])]


def test_best_epoch_is_the_first_maximum() -> None:
    assert best_epoch_of(ROWS) == 3
    assert best_epoch_of([{"val_acc": 0.1}, {"val_acc": 0.5}]) == 2  # no "epoch" key: position
    assert best_epoch_of([{"train_loss": 1.0}]) is None


def test_full_history_with_stored_best_epoch() -> None:
    h = run_history({"history": ROWS, "best_epoch": 4, "train_args": {"epochs": 5}})
    assert h.epochs == ROWS and h.best_epoch == 4 and h.complete and h.note() is None
    assert run_history({"history": []}) is None


def test_truncated_history_is_named_as_such() -> None:
    h = run_history({"history": ROWS[:3], "train_args": {"epochs": 5}})
    assert h.best_epoch == 3 and not h.complete
    assert "epochs 1–3 of the 5 trained" in h.note()


def _write(path: Path, history: list[dict]) -> None:
    torch.save({"meta": {"history": history}, "state_dict": {}}, path)


def test_the_same_runs_last_file_completes_an_old_history(tmp_path: Path) -> None:
    best = tmp_path / "m.pt"
    best.write_bytes(b"")  # only its existence matters here; the meta is passed in
    _write(tmp_path / "m.last.pt", ROWS)
    h = run_history({"history": ROWS[:3], "train_args": {"epochs": 5}}, best)
    assert h.epochs == ROWS and h.best_epoch == 3 and h.complete and h.source == "m.last.pt"


def test_a_different_runs_last_file_is_ignored(tmp_path: Path) -> None:
    best = tmp_path / "m.pt"
    best.write_bytes(b"")
    _write(tmp_path / "m.last.pt", [{**r, "val_acc": 0.0} for r in ROWS])
    h = run_history({"history": ROWS[:3], "train_args": {"epochs": 5}}, best)
    assert h.epochs == ROWS[:3] and h.source == "checkpoint" and not h.complete
    (tmp_path / "m.last.pt").write_bytes(b"not a checkpoint")
    assert run_history({"history": ROWS[:3], "train_args": {"epochs": 5}}, best).epochs == ROWS[:3]


def test_shipped_se_model_carries_every_trained_epoch() -> None:
    from sedensenet import load_checkpoint

    path = Path(__file__).resolve().parents[1] / "assets" / "models" / "demo-se.pt"
    meta = load_checkpoint(path, device="cpu").meta
    h = run_history(meta, path)
    assert len(h.epochs) == meta.train_args["epochs"] and h.complete
    assert h.best_epoch == best_epoch_of(meta.history)  # the stored best epoch agrees with the history
