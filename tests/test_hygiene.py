"""Repository hygiene: nothing ignored is tracked, and the app does not watch the virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_tracked_file_is_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_streamlit_does_not_watch_the_repository_recursively() -> None:
    from streamlit.watcher.path_watcher import get_path_watcher_class

    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    watcher = get_path_watcher_class(server.get("fileWatcherType", "auto"))
    # the watchdog observer schedules the app's folder recursively (.venv included); polling watches single files
    assert watcher.__name__ != "EventBasedPathWatcher"
    assert ".venv" in server.get("folderWatchBlacklist", [])
