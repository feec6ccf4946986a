"""AppTest harness for the multipage app.

AppTest bug (Streamlit 1.67): for every run it resets ``PagesManager.uses_pages_directory`` and re-detects the
``pages/`` folder beside ``app.py``, so the legacy multipage runner executes a switched-to page *instead of*
``app.py`` and the shared sidebar vanishes. A live server clears the flag for good on the first
``st.navigation`` call (``streamlit/commands/navigation.py``); :func:`app_test` does the same after each detection,
so AppTest runs the app exactly as the server does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


class _NavigationPagesManager(PagesManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False  # what st.navigation does on a live server


@contextlib.contextmanager
def patched_pages() -> Iterator[None]:
    saved = app_test_module.PagesManager
    app_test_module.PagesManager = _NavigationPagesManager
    try:
        yield
    finally:
        app_test_module.PagesManager = saved


def fresh_app(query: dict[str, str] | None = None) -> AppTest:
    """A new session of the app (caches cleared), first run done."""
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def figure_specs(at: AppTest) -> list[dict]:
    """Every Plotly chart's figure JSON on the current page."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def figure_titles(at: AppTest) -> list[str]:
    out = []
    for spec in figure_specs(at):
        title = spec.get("layout", {}).get("title")
        out.append(title.get("text", "") if isinstance(title, dict) else str(title or ""))
    return out


@pytest.fixture(autouse=True)
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Shipped models only (no SEDENSENET_MODELS from the caller's shell) and page switching as on a server.
    Modules that import it get it for every test."""
    monkeypatch.delenv("SEDENSENET_MODELS", raising=False)
    with patched_pages():
        yield
