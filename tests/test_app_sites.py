"""AppTest: a model with SE at every site renders on Explore, Model and Learn, with site names and ragged widths."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_harness import fresh_app, patched_pages
from helpers import tiny
from streamlit.testing.v1 import AppTest

from sedensenet import save_checkpoint
from sedensenet.models.densenet import SE_SITES, se_slots

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AppTest:
    model = tiny("+".join(SE_SITES), se_sites={"stem": {"hidden": 3, "bias": True, "variant": "fc1fc2"}})
    save_checkpoint(tmp_path / "sites.pt", model, {"classes": [f"c{i}" for i in range(8)], "input_size": 64})
    monkeypatch.setenv("SEDENSENET_MODELS", str(tmp_path))
    with patched_pages():
        yield fresh_app({"model": f"{tmp_path.name}:sites"})


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_every_site_shows_on_explore_model_and_learn(app: AppTest) -> None:
    _ok(app)
    cfg = tiny("+".join(SE_SITES)).config
    slots = se_slots(cfg)
    assert app.sidebar.selectbox(key="family").value.endswith(":sites")
    app.switch_page("pages/model.py").run()
    _ok(app)
    assert next(m for m in app.metric if m.label == "SE layers").value == str(len(slots))
    table = next(d.value for d in app.dataframe if "site" in d.value.columns)
    assert list(table["site"]) == list(SE_SITES)
    stem = table[table["site"] == "stem"].iloc[0]
    assert (stem["width rule"], bool(stem["bias"]), stem["variant"]) == ("fixed 3", True, "fc1fc2")
    app.switch_page("pages/learn.py").run()
    _ok(app)
    box = app.selectbox(key="w_learn_layer")
    shown = box.options  # formatted labels
    assert [s.split(" · ")[0] for s in shown] == [s.label for s in slots]
    box.set_value(2).run()  # "layer 1.1 input": ragged width differs from the stem's
    _ok(app)
    assert any("layer 1.1 input" in m.value for m in app.markdown)
    assert any("hidden units" in c.value for c in app.caption)
