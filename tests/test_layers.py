"""Layering: only ``sedensenet.app`` imports Streamlit; the rest of the library works without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil, sys
sys.modules["streamlit"] = None  # any "import streamlit" now raises ImportError
import sedensenet
names = sorted(m.name for m in pkgutil.walk_packages(sedensenet.__path__, "sedensenet."))
library = [n for n in names if n != "sedensenet.app" and not n.startswith("sedensenet.app.")
           and n != "sedensenet.__main__"]  # __main__ runs the CLI when imported
for name in library:
    importlib.import_module(name)
try:
    importlib.import_module("sedensenet.app.frame")
except ImportError as exc:
    print("app-blocked", exc)
from sedensenet import build_model, capture_excitations
import torch
cap = capture_excitations(build_model("demo", se="layer", reduction=4).eval(), torch.randn(1, 3, 64, 64))
print("imported", ",".join(library))
print("records", len(cap.records))
print("loaded", " ".join(sorted(m for m in sys.modules if m.startswith("sedensenet"))))
"""


def test_library_imports_and_runs_with_streamlit_blocked() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert "streamlit" in lines["app-blocked"]  # the control: blocking works, and the app layer does need it
    files = [p.relative_to(ROOT).with_suffix("") for p in (ROOT / "sedensenet").rglob("*.py")]
    expected = {".".join(p.parts[:-1] if p.name == "__init__" else p.parts) for p in files}
    expected -= {"sedensenet", "sedensenet.__main__"}
    expected = {n for n in expected if not n.startswith("sedensenet.app")}
    assert set(lines["imported"].split(",")) == expected  # every library module was imported
    assert lines["records"] == "18"  # the demo model: 3 blocks × 6 layers, SE in each
    for sub in ("models", "analysis", "data", "training", "cli"):
        assert f"sedensenet.{sub}." in lines["loaded"]
