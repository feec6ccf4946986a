"""evaluate and curves: confusion matrix against a direct count, curves figure built from the history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import MEAN, STD, tiny
from torch.utils.data import DataLoader

from sedensenet import save_checkpoint
from sedensenet.cli.main import main
from sedensenet.data.demo import DEMO_CLASSES
from sedensenet.data.images import DemoShapes, eval_transform
from sedensenet.figures import training_curves
from sedensenet.training.evaluate import confusion_matrix, report_from_confusion

HISTORY = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_acc": 0.2 * e, "val_acc": 0.18 * e}
           for e in (1, 2, 3)]


def test_confusion_matrix_matches_direct_count() -> None:
    model = tiny("layer")
    ds = DemoShapes(40, seed=3, transform=eval_transform(64, MEAN, STD))
    cm = confusion_matrix(model, DataLoader(ds, batch_size=16), torch.device("cpu"), 8, progress=False)
    x = torch.stack([ds[i][0] for i in range(40)])
    y = torch.tensor(ds.targets)
    with torch.no_grad():
        pred = model(x).argmax(1)
    for t in range(8):
        for p in range(8):
            assert cm[t, p] == int(((y == t) & (pred == p)).sum())
    rep = report_from_confusion(cm, list(DEMO_CLASSES))
    assert rep["accuracy"] == pytest.approx(float((pred == y).float().mean()))
    assert rep["per_class_accuracy"]["circle"] == pytest.approx(float((pred[y == 0] == 0).float().mean()))


def test_evaluate_cli_json_and_refusals(tmp_path: Path, capsys) -> None:
    ckpt = save_checkpoint(tmp_path / "m.pt", tiny("layer"), {"classes": list(DEMO_CLASSES), "input_size": 64})
    assert main(["evaluate", str(ckpt), "demo", "--demo-n", "24", "--json", "--device", "cpu"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 24 and sum(map(sum, rep["confusion_matrix"])) == 24
    other = save_checkpoint(tmp_path / "o.pt", tiny("layer", num_classes=2))
    assert main(["evaluate", str(other), "demo"]) == 2
    assert "not the demo classes" in capsys.readouterr().err


def test_training_curves_figure_and_cli(tmp_path: Path) -> None:
    fig = training_curves({"se": HISTORY, "base": HISTORY[:2]})
    names = [t.name for t in fig.data]
    assert names == ["se train", "se val", "se train", "se val", "base train", "base val", "base train", "base val"]
    assert list(fig.data[1].y) == [h["val_acc"] for h in HISTORY]
    assert list(fig.data[2].y) == [h["train_loss"] for h in HISTORY]
    ckpt = save_checkpoint(tmp_path / "m.pt", tiny("layer"), {"history": HISTORY})
    assert main(["curves", str(ckpt), "--out", str(tmp_path / "c.html")]) == 0
    assert "plotly" in (tmp_path / "c.html").read_text()[:5000].lower()
    bare = save_checkpoint(tmp_path / "b.pt", tiny("layer"))
    assert main(["curves", str(bare)]) == 2
