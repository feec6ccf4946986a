"""The best checkpoint keeps the best weights but carries every trained epoch, and says which epoch is best."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sedensenet import load_checkpoint
from sedensenet.training import loop
from sedensenet.training.loop import TrainConfig, train

TINY = dict(arch="demo", reduction=2, demo_train=64, demo_val=16, batch_size=16, workers=0, quiet=True,
            limit_batches=2)


def test_best_file_has_full_history_and_the_best_epochs_weights(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = iter([0.5, 0.9, 0.7])  # validation accuracy per epoch: epoch 2 is the best
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    real = loop.run_epoch

    def run_epoch(model, loader, device, *, optimizer, cfg, **kw):
        out = real(model, loader, device, optimizer=optimizer, cfg=cfg, **kw)
        if optimizer is None:  # a validation pass: script its accuracy, remember the weights it saw
            out = {**out, "acc": next(scripted)}
            snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
        return out

    monkeypatch.setattr(loop, "run_epoch", run_epoch)
    result = train(TrainConfig(**TINY, epochs=3, out=str(tmp_path / "m.pt")))
    best = load_checkpoint(result.best_path, device="cpu")
    last = load_checkpoint(result.last_path, device="cpu")
    assert [h["epoch"] for h in best.meta.history] == [1, 2, 3]
    assert best.meta.history == last.meta.history
    assert best.meta.best_epoch == last.meta.best_epoch == 2
    assert [h["val_acc"] for h in best.meta.history] == [0.5, 0.9, 0.7]
    state = best.model.state_dict()
    assert all(torch.equal(state[k], snapshots[2][k]) for k in state)  # the best epoch's weights …
    assert not all(torch.equal(state[k], snapshots[3][k]) for k in state)  # … not the last epoch's
    assert result.best_val_acc == 0.9


def test_resume_keeps_the_best_model_and_extends_its_history(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = iter([0.8, 0.6, 0.7])
    real = loop.run_epoch

    def run_epoch(model, loader, device, *, optimizer, cfg, **kw):
        out = real(model, loader, device, optimizer=optimizer, cfg=cfg, **kw)
        return {**out, "acc": next(scripted)} if optimizer is None else out

    monkeypatch.setattr(loop, "run_epoch", run_epoch)
    cfg = dict(TINY, out=str(tmp_path / "m.pt"))
    train(TrainConfig(**cfg, epochs=1))
    first = load_checkpoint(tmp_path / "m.pt", device="cpu").model.state_dict()
    train(TrainConfig(**cfg, epochs=3, resume=True))
    best = load_checkpoint(tmp_path / "m.pt", device="cpu")
    assert [h["epoch"] for h in best.meta.history] == [1, 2, 3] and best.meta.best_epoch == 1
    assert all(torch.equal(v, first[k]) for k, v in best.model.state_dict().items())
