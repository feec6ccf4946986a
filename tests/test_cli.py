"""CLI: help, info (text and JSON), clear errors without tracebacks."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import torch
import torchvision

from sedensenet import build_model, save_checkpoint
from sedensenet.cli.main import build_parser, main
from sedensenet.cli.options import add_dataclass_arguments
from sedensenet.errors import ConfigError
from sedensenet.fields import option
from sedensenet.training.loop import TrainConfig


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedensenet", *args], capture_output=True, text=True, timeout=300)


# README's CLI section
COMMANDS = ("info", "predict", "explain", "report", "convert", "stats", "train", "evaluate", "curves")


def test_help_lists_every_command_and_each_has_help(capsys) -> None:
    out = _run("--help")
    assert out.returncode == 0
    listed = re.findall(r"^    (\w+) ", out.stdout, re.M)
    assert listed == list(COMMANDS)
    for command in COMMANDS:
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        text = capsys.readouterr().out
        assert done.value.code == 0 and text.startswith(f"usage: sedensenet {command}"), command
        if command == "info":
            assert "--json" in text


def _actions(command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


def test_device_option_is_the_same_everywhere() -> None:
    for command in ("info", "predict", "explain", "train", "evaluate"):
        action = _actions(command)["device"]
        assert action.option_strings == ["--device"] and action.default == "auto", command


def test_train_flags_come_from_train_config_with_its_defaults() -> None:
    actions = _actions("train")
    for f in fields(TrainConfig):
        assert f.name in actions, f.name
        assert actions[f.name].default == f.default, f.name
        assert actions[f.name].help, f.name  # help text from the field's metadata
    # every flag name the command had keeps working
    old = ["--data", "x", "--data-dir", "d", "--val-split", "0.2", "--demo-train", "10", "--demo-val", "5",
           "--demo-seed", "3", "--input-size", "48", "--no-augment", "--workers", "0", "--arch", "densenet_bc",
           "--se", "block", "--reduction", "8", "--se-hidden", "none", "--se-bias", "--memory-efficient",
           "--drop-rate", "0.1", "--depth", "40", "--growth", "12", "--epochs", "3", "--batch-size", "16",
           "--optimizer", "adamw", "--lr", "0.01", "--momentum", "0.8", "--weight-decay", "0.02", "--schedule",
           "step", "--label-smoothing", "0.1", "--seed", "7", "--limit-batches", "2", "--device", "cpu",
           "--no-amp", "--no-channels-last", "--out", "o.pt", "--resume", "--pair", "--quiet"]
    args = build_parser().parse_args(["train", *old])
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    assert (cfg.data, cfg.val_split, cfg.input_size, cfg.augment, cfg.arch, cfg.se_hidden, cfg.se_bias) == \
        ("x", 0.2, 48, False, "densenet_bc", None, True)
    assert (cfg.growth, cfg.optimizer, cfg.lr, cfg.schedule, cfg.amp, cfg.channels_last, cfg.resume) == \
        (12, "adamw", 0.01, "step", False, False, True)
    assert args.pair is True


def test_generated_flags_handle_optional_strings_and_switches() -> None:
    @dataclass
    class Options:
        split_file: str | None = option(None, "a split file", group="data")
        size: int | None = option(None, "a size", group="data")
        colour: str = option("red", "a colour", group="look", choices=("red", "blue"))
        fancy: bool = option(True, "plain output", group="look")
        note: str = "x"  # no metadata: still a flag

    parser = argparse.ArgumentParser()
    groups = add_dataclass_arguments(parser, Options, groups={"data": "data"}, default_group="other")
    assert list(groups) == ["data", "look", "other"]
    assert vars(parser.parse_args([])) == {"split_file": None, "size": None, "colour": "red", "fancy": True,
                                           "note": "x"}
    got = vars(parser.parse_args(["--split-file", "s.json", "--size", "none", "--colour", "blue", "--no-fancy",
                                  "--note", "y"]))
    assert got == {"split_file": "s.json", "size": None, "colour": "blue", "fancy": False, "note": "y"}
    assert parser.parse_args(["--size", "7"]).size == 7
    assert "a split file" in parser.format_help() and "(default red)" in parser.format_help()


def test_dataclass_flags_parse_back_into_the_same_training_configuration() -> None:
    """The stored training command of a run is its configuration: flags → parser → the same TrainConfig."""
    from sedensenet.cli.options import dataclass_flags

    configs = [TrainConfig(), TrainConfig(data="my photos/", split_file="s.csv", arch="densenet_bc", depth=40,
                                          se="block", se_bias=True, augment=False, amp=False, lr=0.123456789,
                                          weight_decay=5e-4, ema=0.98, label_smoothing=1e-7, seed=0, input_size=96)]
    for cfg in configs:
        flags = dataclass_flags(cfg, always=("seed",))
        assert flags.count("--seed") == 1
        args = build_parser().parse_args(["train", *flags])
        assert TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)}) == cfg
    assert dataclass_flags(TrainConfig()) == []  # defaults are not spelled out
    assert "--no-augment" in dataclass_flags(configs[1]) and "--se-bias" in dataclass_flags(configs[1])


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


def test_user_error_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", "demo", "--epochs", "0", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "sedensenet train: error: epochs and batch size must be ≥ 1"


def test_missing_resume_file_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--resume", "--demo-train", "16", "--demo-val", "8",
                 "--quiet", "--device", "cpu", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume: no" in err[0] and "run without --resume first" in err[0]


def _failing_handler(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    import sedensenet.cli.info as info_cli

    def boom(_args: argparse.Namespace) -> int:
        raise exc
    monkeypatch.setattr(info_cli, "_cmd_info", boom)


def test_bug_exits_1_with_one_line_and_logs_the_traceback(tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    _failing_handler(monkeypatch, ValueError("internal detail"))  # a ValueError that is not a user error
    assert main(["info", "x.pt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    log = tmp_path / "sedensenet-error.log"
    assert len(err) == 1 and "unexpected error (ValueError: internal detail)" in err[0] and str(log) in err[0]
    assert "--debug" in err[0]
    text = log.read_text()
    assert "Traceback" in text and "raise exc" in text and "ValueError: internal detail" in text


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_handler(monkeypatch, KeyError("k"))
    with pytest.raises(KeyError):
        main(["--debug", "info", "x.pt"])


def test_user_errors_are_sedensenet_errors(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _failing_handler(monkeypatch, ConfigError("pick another thing"))
    assert main(["info", "x.pt"]) == 2
    assert capsys.readouterr().err.strip() == "sedensenet info: error: pick another thing"
