"""AppTest: the Training, Model, Interventions and Learn details a newcomer tripped over (defects 5, 6, 8, 12)."""

from __future__ import annotations

import pytest
import torch
from app_harness import (
    app_env,  # noqa: F401  (autouse fixture for this module)
    fresh_app,
)
from streamlit.testing.v1 import AppTest
from test_app import MODELS, ROOT, _main_text, _ok

from sedensenet.analysis.flags import near_constant_layers
from sedensenet.analysis.pipeline import run_capture
from sedensenet.data.images import load_image
from sedensenet.models.checkpoint import load_checkpoint


@pytest.fixture
def demo() -> AppTest:
    return fresh_app({"model": "shipped:demo", "image": "arrow.png"})


def test_training_page_shows_every_trained_epoch_and_the_best_one(demo: AppTest) -> None:
    demo.switch_page("pages/training.py").run()
    _ok(demo)
    table = demo.dataframe[0].value
    se = torch.load(MODELS / "demo-se.pt", weights_only=True)["meta"]
    row = table[table["model"].str.startswith("SE")].iloc[0]
    assert row["epochs"] == se["train_args"]["epochs"] == 15  # not 13: the file now carries every epoch
    assert row["best epoch (weights in the file)"] == se["best_epoch"] == 13
    base = table[table["model"].str.startswith("baseline")].iloc[0]
    assert base["epochs"] == 12  # an older file: the gap is said, not hidden
    assert any("epochs 1–12 of the 15 trained" in i.value for i in demo.info)


def test_model_page_texts_for_se_and_baseline(demo: AppTest) -> None:
    demo.switch_page("pages/model.py").run()
    _ok(demo)
    assert "every dense layer" in _main_text(demo) and "÷ 4" in _main_text(demo)
    demo.session_state["variant"] = "baseline"
    demo.run()
    _ok(demo)
    text = _main_text(demo)
    assert "No SE blocks" in text and "Hidden width" not in text and "//" not in text and "biases" not in text


def test_interventions_show_probabilities_and_a_sensible_empty_caption(demo: AppTest) -> None:
    demo.session_state["view"] = "Interventions"
    demo.run()
    demo.radio(key="w_int_kind").set_value("Override channels").run()
    _ok(demo)
    captions = " ".join(c.value for c in demo.main.caption)
    assert "No channels picked yet" in captions and ": ." not in captions
    assert "SE off = every gate of that layer set to 1" in captions
    trained = next(m for m in demo.metric if m.label.startswith("As trained: "))
    assert trained.value.endswith("%") and not trained.delta  # a probability, not a delta with an arrow


def test_learn_flags_a_near_constant_layer() -> None:
    loaded = load_checkpoint(MODELS / "demo-se.pt", device="cpu")
    cap = run_capture(loaded, [load_image(ROOT / "assets" / "examples" / "arrow.png")])
    flagged = near_constant_layers([r.excitation[0] for r in cap.records])
    informative = next(i for i in range(len(cap.records)) if i not in flagged)
    assert flagged  # the shipped model has such layers (e.g. the last one), computed here independently
    at = fresh_app({"model": "shipped:demo", "image": "arrow.png"})
    at.switch_page("pages/learn.py").run()
    at.selectbox(key="w_learn_layer").set_value(flagged[0]).run()
    _ok(at)
    assert any("near-constant" in w.value for w in at.warning)
    at.selectbox(key="w_learn_layer").set_value(informative).run()
    assert not any("near-constant" in w.value for w in at.warning)
