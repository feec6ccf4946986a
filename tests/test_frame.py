"""The app's shared frame: only user errors become plain messages; anything else is logged as a bug."""

from __future__ import annotations

import logging

import pytest
from streamlit.testing.v1 import AppTest


def _guarded_page() -> None:
    import streamlit as st

    from sedensenet.app.frame import guard
    from sedensenet.errors import ConfigError

    def body() -> None:
        st.write("started")
        if st.session_state.get("kind") == "user":
            raise ConfigError("choose a number between 1 and 5")
        raise ValueError("internal detail: index 7 of 3")  # a bug, even though it is a ValueError

    guard(body)


def _run_guarded(kind: str) -> AppTest:
    at = AppTest.from_function(_guarded_page, default_timeout=60)
    at.session_state["kind"] = kind
    return at.run()


def test_user_error_is_one_message_without_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="sedensenet.app"):
        at = _run_guarded("user")
    assert not at.exception
    assert [e.value for e in at.error] == ["choose a number between 1 and 5"]
    assert not [r for r in caplog.records if r.name == "sedensenet.app"]


def test_bug_is_logged_with_traceback_and_shown_as_one_friendly_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="sedensenet.app"):
        at = _run_guarded("bug")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "\n" not in errors[0] and "internal detail" not in errors[0]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "sedensenet.app")
    assert "Traceback" in logged and "internal detail: index 7 of 3" in logged and "in body" in logged
