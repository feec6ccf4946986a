"""CLI help: every option of every command explains itself; the top-level help lists every command without
importing torch (so it is quick)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sedensenet.cli.main import build_parser, main
from sedensenet.cli.quickhelp import COMMANDS


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help() -> None:
    missing = [f"{name} {' '.join(a.option_strings) or a.dest}" for name, p in _commands().items()
               for a in p._actions if a.dest != "help" and not (a.help and a.help.strip())]
    assert missing == []


def test_quick_table_lists_exactly_the_real_commands_with_their_help() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    real = {c.dest: c.help for c in sub._choices_actions}
    assert real == COMMANDS


def test_top_level_help_prints_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out and text.split(" (")[0] in " ".join(out.split()) for name, text in COMMANDS.items())


def test_top_level_help_and_import_do_not_load_torch() -> None:
    code = ("import sys\nimport sedensenet\nfrom sedensenet.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('heavy:', sorted(m for m in ('torch', 'torchvision', 'captum', 'plotly') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("heavy: []")


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2 and "COMMAND" in capsys.readouterr().err


def test_a_command_help_still_shows_its_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    out = capsys.readouterr().out
    assert "--top" in out and "how many classes to list" in out and "--device" in out
