"""AppTest: the Class statistics page opens stats files and shows a checkpoint's stored statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_harness import fresh_app, patched_pages
from streamlit.testing.v1 import AppTest

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.analysis.class_stats import demo_statistics
from sedensenet.analysis.stats_file import stats_to_bytes, stats_to_meta

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/class_statistics.py"
DEMO_SE = ROOT / "assets" / "models" / "demo-se.pt"


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(autouse=True)
def _pages():
    with patched_pages():
        yield


def _app(monkeypatch: pytest.MonkeyPatch, models: Path | None = None, family: str = "shipped:demo") -> AppTest:
    if models is None:
        monkeypatch.delenv("SEDENSENET_MODELS", raising=False)
    else:
        monkeypatch.setenv("SEDENSENET_MODELS", str(models))
    at = fresh_app({"model": family})
    at.switch_page(PAGE).run()
    _ok(at)
    assert at.sidebar.selectbox(key="family").value == family
    return at


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _traces(spec: dict) -> list[tuple]:
    return [(t.get("name"), t.get("x"), t.get("y")) for t in spec["data"]]


@pytest.fixture(scope="module")
def demo_stats():
    return demo_statistics(load_checkpoint(DEMO_SE, device="cpu"), 5, 4242)


@pytest.mark.parametrize("kind", ["json", "npz"])
def test_stats_file_shows_the_same_figures_as_the_in_app_computation(monkeypatch, demo_stats, kind: str) -> None:
    at = _app(monkeypatch)
    at.radio(key="w_stats_source").set_value("Demo shapes (generated)").run()
    at.slider(key="w_stats_n").set_value(5).run()
    _ok(at)
    computed = _specs(at)
    assert len(computed) == 5  # specificity + four layers
    at.radio(key="w_stats_source").set_value("Open a stats file (.json/.npz)").run()
    _ok(at)
    assert not at.get("plotly_chart")  # nothing until a file is given
    at.file_uploader(key="w_stats_file").set_value((f"demo.{kind}", stats_to_bytes(demo_stats, kind),
                                                    "application/octet-stream")).run()
    _ok(at)
    opened = _specs(at)
    assert [_traces(s) for s in opened] == [_traces(s) for s in computed]
    assert any("Computed on: demo shapes (40 generated images, seed 4242)" in t.value for t in at.text)
    assert not at.warning  # same classes and SE layers as the model


def test_bad_stats_file_is_one_clear_error(monkeypatch) -> None:
    at = _app(monkeypatch)
    at.radio(key="w_stats_source").set_value("Open a stats file (.json/.npz)").run()
    at.file_uploader(key="w_stats_file").set_value(("x.json", b'{"format": "nope"}', "application/json")).run()
    assert not at.exception
    assert len(at.error) == 1 and "not a sedensenet class-statistics file" in at.error[0].value


def test_stored_statistics_show_at_once_with_their_description(monkeypatch, demo_stats, tmp_path: Path) -> None:
    loaded = load_checkpoint(DEMO_SE, device="cpu")
    demo_stats.description = "val + test split of *the* shapes <b>"
    folder = tmp_path / "mdl"
    save_checkpoint(folder / "stored-se.pt", loaded.model,
                    {**loaded.meta.stored(), "class_statistics": stats_to_meta(demo_stats)})
    at = _app(monkeypatch, folder, "mdl:stored")
    assert at.radio(key="w_stats_source_stored").value == "Stored with the checkpoint"
    assert any(t.value == "Computed on: val + test split of *the* shapes <b>" for t in at.text)  # shown as text
    stored = _specs(at)
    assert len(stored) == 5
    at.radio(key="w_stats_source_stored").set_value("Demo shapes (generated)").run()
    at.slider(key="w_stats_n").set_value(5).run()
    _ok(at)
    assert [_traces(s) for s in _specs(at)] == [_traces(s) for s in stored]
    # the shipped model carries none: no stored option
    at.sidebar.selectbox(key="family").set_value("shipped:demo").run()
    _ok(at)
    assert "Stored with the checkpoint" not in at.radio(key="w_stats_source").options
