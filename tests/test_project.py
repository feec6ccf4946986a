"""Project plumbing: the README's test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "streamlit run app.py" in commands[0]
    assert "pytest" in commands[1] and ".[dev]" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert f"# README: {test_command}" in ci
    # every step of the README line is executed by CI (pip may add -q)
    for step in test_command.split(" && "):
        step_re = re.escape(step).replace(r"pip\ install\ ", r"pip\ install\ (?:-q\ )?")
        assert re.search(rf"^{step_re}", ci, re.M), step
