"""AppTest: the hostile corpus through the app's own upload paths (checkpoint upload, image upload, the Class
statistics zip). Every input ends in one escaped error or a correct result; never an exception on screen, never
a user-controlled string rendered as markdown or HTML."""

from __future__ import annotations

import re

import pytest
from app_harness import fresh_app
from hostile import Case, build_corpus
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow  # each upload reruns the page on a freshly loaded model

UNESCAPE = re.compile(r"\\(.)")
ESCAPED = re.compile(r"\\.")
EVIL = ("<img", ":red[", "](javascript", "$x")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("hostile-app"), big=False)


def _texts(at: AppTest) -> list[str]:
    """The markdown source of everything Streamlit renders as markdown (sidebar included)."""
    return [e.value for kind in ("markdown", "caption", "error", "warning", "info", "subheader", "title")
            for e in at.get(kind)]


def _assert_inert(at: AppTest) -> None:
    """No user-controlled markup is live: each dangerous sequence appears only with its syntax escaped."""
    for text in _texts(at):
        live = ESCAPED.sub("", text)  # what markdown still interprets once escaped characters are taken out
        for bad in EVIL:
            assert bad not in live, (bad, text)
        assert "\x1b" not in text and "\x00" not in text, text


def _errors(at: AppTest) -> list[str]:
    return [UNESCAPE.sub(r"\1", e.value) for e in at.error]


def _upload_checkpoint(at: AppTest, case: Case) -> AppTest:
    data = case.path.read_bytes()
    return at.sidebar.file_uploader(key="w_ckpt_upload").set_value((case.path.name, data, "application/octet-stream")
                                                                    ).run()


def test_every_hostile_checkpoint_is_one_clear_error_or_loads(corpus: list[Case]) -> None:
    at = fresh_app()
    default = at.session_state["family"]
    for case in (c for c in corpus if c.kind == "ckpt"):
        if at.session_state["family"] != default:  # back to a usable model before the next upload
            at.sidebar.selectbox(key="family").set_value(default).run()
        before = at.session_state["family"]
        _upload_checkpoint(at, case)
        assert not at.exception, (case.name, [e.value for e in at.exception])
        if case.expect == "refuse":
            errors = _errors(at)
            assert len(errors) == 1 and re.search(case.match, errors[0]), (case.name, errors)
            assert "Traceback" not in errors[0] and "Something went wrong" not in errors[0]
            assert at.session_state["family"] == before  # the page stays on a usable model
        else:
            assert at.session_state["family"].startswith("upload:"), case.name
            errors = _errors(at)
            if case.name == "overflowing-weights":  # loads, but its answers are refused, not shown as nan %
                assert len(errors) == 1 and "not finite" in errors[0], errors
            else:
                assert not errors, (case.name, errors)
        _assert_inert(at)


def test_evil_class_names_are_shown_as_typed(corpus: list[Case]) -> None:
    at = fresh_app()
    case = next(c for c in corpus if c.name == "evil-class-names")
    _upload_checkpoint(at, case)
    assert not at.exception and not at.error
    _assert_inert(at)
    shown = " ".join(UNESCAPE.sub(r"\1", t) for t in _texts(at))
    assert "<img src=x onerror=alert(1)>" in shown  # the name is visible, as typed, but escaped in the source
    assert "\\x1b[2J" in shown  # the terminal escape is shown, not sent
    for page in ("pages/model.py", "pages/compare.py", "pages/learn.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        _assert_inert(at)


def test_hostile_images_are_refused_politely_or_analysed(corpus: list[Case]) -> None:
    at = fresh_app()
    for case in (c for c in corpus if c.kind == "image"):
        name = "<img src=x onerror=alert(1)>.png" if case.name == "html-file-name" else case.path.name
        at.file_uploader(key="w_uploads").set_value([(name, case.path.read_bytes(), "application/octet-stream")]
                                                    ).run()
        assert not at.exception, (case.name, [e.value for e in at.exception])
        errors = _errors(at)
        if case.expect == "refuse":
            assert len(errors) == 1 and errors[0].startswith("Image refused") and re.search(case.match, errors[0]), \
                (case.name, errors)
        else:
            assert not errors, (case.name, errors)
            assert at.session_state["image"].endswith(name), case.name  # the upload is what is analysed
        _assert_inert(at)


def test_bad_class_statistics_zip_is_one_clear_error(corpus: list[Case]) -> None:
    at = fresh_app({"model": "shipped:demo"})
    at.switch_page("pages/class_statistics.py").run()
    at.radio(key="w_stats_source").set_value("Upload a zip of <class>/<image> folders").run()
    assert not at.exception
    for case in (c for c in corpus if c.kind == "zip"):
        at.file_uploader(key="w_stats_zip").set_value((case.path.name, case.path.read_bytes(), "application/zip")
                                                      ).run()
        assert not at.exception, (case.name, [e.value for e in at.exception])
        errors = _errors(at)
        assert len(errors) == 1 and re.search(case.match, errors[0]), (case.name, errors)



def test_checkpoint_upload_is_judged_by_content_not_extension(corpus: list[Case]) -> None:
    at = fresh_app()
    good = next(c for c in corpus if c.name == "history-string")  # a loadable checkpoint
    at.sidebar.file_uploader(key="w_ckpt_upload").set_value(("model.pt.1", good.path.read_bytes(),
                                                             "application/octet-stream")).run()
    assert not at.exception and at.session_state["family"].startswith("upload:")
    at.sidebar.file_uploader(key="w_ckpt_upload").set_value(("notes.txt", b"epoch 1: loss 0.3\n", "text/plain")).run()
    assert not at.exception
    errors = _errors(at)
    assert len(errors) == 1 and "notes.txt" in errors[0] and "checkpoint" in errors[0], errors
