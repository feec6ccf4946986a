"""PNG export: kaleido is a main dependency, and what is missing is said in one plain sentence."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import plotly.graph_objects as go
import pytest

from sedensenet import figures
from sedensenet.errors import SedensenetError

ROOT = Path(__file__).resolve().parents[1]


def test_kaleido_is_in_the_default_install() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("kaleido") for d in project["dependencies"])
    assert importlib.util.find_spec("kaleido") is not None  # installed by `pip install -e .`


def test_missing_kaleido_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kaleido" else real(name, *a))
    assert figures.png_export_problem() == figures.PNG_NEEDS_KALEIDO
    with pytest.raises(SedensenetError, match=r"^PNG export needs the kaleido package: pip install kaleido") as exc:
        figures.figure_png(go.Figure())
    assert "\n" not in str(exc.value)


def test_missing_browser_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "find_chromium", lambda: None)
    assert figures.png_export_problem() == figures.PNG_NEEDS_CHROMIUM
    with pytest.raises(figures.ExportError, match="apt-get install chromium") as exc:
        figures.figure_png(go.Figure())
    assert "\n" not in str(exc.value) and "HTML export works" in str(exc.value)


def test_a_browser_failure_becomes_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figures, "png_export_problem", lambda: None)
    monkeypatch.setattr(figures, "find_chromium", lambda: "/bin/true")

    def boom(self, **kw):
        raise ValueError("\n\n   Kaleido failed: browser closed\n  details …\n")

    monkeypatch.setattr(go.Figure, "to_image", boom)
    with pytest.raises(figures.ExportError) as exc:
        figures.figure_png(go.Figure())
    assert str(exc.value) == "PNG export failed in the browser: Kaleido failed: browser closed. HTML export works."
