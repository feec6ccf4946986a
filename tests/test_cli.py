"""CLI: help, info (text and JSON), clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
import torchvision

from sedensenet import build_model, save_checkpoint
from sedensenet.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedensenet", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    assert "info" in out.stdout
    sub = _run("info", "--help")
    assert sub.returncode == 0 and "--json" in sub.stdout


def test_info_json_describes_checkpoint(tmp_path: Path, capsys) -> None:
    model = build_model("densenet_bc", depth=40, growth=12, se="layer", reduction=4, num_classes=3)
    path = save_checkpoint(tmp_path / "m.pt", model, {"classes": ["a", "b", "c"], "input_size": 40,
                                                      "history": [{"epoch": 1}]})
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    se_params = 18 * 2 * (12 * 3)  # (40 - 4) / 6 = 6 layers × 3 blocks = 18 SE layers, two 12×3 matrices each, no bias
    assert info["se"] == "layer" and info["se_layers"] == 18
    assert info["se_parameters"] == se_params
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"] - info["se_parameters"] == sum(
        p.numel() for p in build_model("densenet_bc", depth=40, growth=12, se="none", num_classes=3).parameters())
    assert info["classes"] == ["a", "b", "c"] and info["input_size"] == 40 and info["epochs_trained"] == 1


def test_info_text_on_torchvision_file_states_assumptions(tmp_path: Path) -> None:
    path = tmp_path / "tv.pth"
    torch.save(torchvision.models.densenet121().state_dict(), path)
    out = _run("info", str(path))
    assert out.returncode == 0, out.stderr
    assert "7,978,856" in out.stdout and "densenet121" in out.stdout
    assert "assumed" in out.stdout and "ImageNet" in out.stdout


def test_info_on_bad_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    out = _run("info", str(bad))
    assert out.returncode == 2
    assert "error:" in out.stderr and "Traceback" not in out.stderr
