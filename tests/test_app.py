"""AppTest: every page renders on the shipped demo models, with uploads, variants and every attribution method."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from sedensenet.analysis.attribution import METHODS
from sedensenet.data.demo import make_sample

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.delenv("SEDENSENET_MODELS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _png(seed: int = 1, index: int = 3) -> bytes:
    buf = io.BytesIO()
    make_sample(seed, index, 96).pil.save(buf, "PNG")
    return buf.getvalue()


def test_every_page_renders_on_demo_models(app: AppTest) -> None:
    _ok(app)
    assert app.session_state["family"] == "shipped:demo"
    assert len(app.get("plotly_chart")) >= 5  # prediction, heat-map, bars, scatter, depth
    for page in PAGES:
        app.switch_page(page).run()
        _ok(app)
        assert app.title, page
        assert app.sidebar.selectbox(key="w_family").value == "shipped:demo"  # sidebar drawn on every page


def test_switching_se_and_baseline_keeps_image_and_persists_across_pages(app: AppTest) -> None:
    app.file_uploader(key="w_uploads").set_value([("star.png", _png(), "image/png")]).run()
    _ok(app)
    assert app.session_state["images"][0]["name"] == "star.png"
    app.sidebar.radio(key="w_variant").set_value("baseline").run()
    _ok(app)
    assert app.session_state["variant"] == "baseline"
    assert app.session_state["images"][0]["name"] == "star.png"
    assert any("no SE layers" in i.value for i in app.info)
    for page in PAGES:
        app.switch_page(page).run()
        _ok(app)
        assert app.session_state["variant"] == "baseline"
        assert app.sidebar.radio(key="w_variant").value == "baseline"
    app.sidebar.radio(key="w_variant").set_value("se").run()
    _ok(app)
    app.switch_page("app.py").run()
    _ok(app)
    assert app.sidebar.radio(key="w_variant").value == "se"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_attribution_method_renders(app: AppTest, method: str) -> None:
    app.selectbox(key="w_method").set_value(method).run()
    _ok(app)
    assert app.session_state["last_map"][0] == method


@pytest.mark.parametrize("payload,name", [(b"definitely not an image", "bad.png"),
                                          (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "truncated.png")])
def test_bad_upload_shows_one_error_and_no_exception(app: AppTest, payload: bytes, name: str) -> None:
    app.file_uploader(key="w_uploads").set_value([(name, payload, "image/png")]).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and name in errors[0] and "could not be read as an image" in errors[0]


def test_bad_checkpoint_upload_is_refused_clearly(app: AppTest) -> None:
    app.sidebar.file_uploader(key="w_ckpt_upload").set_value(("evil.pt", b"PK\x03\x04garbage", "application/octet"))
    app.run()
    assert not app.exception
    assert any("truncated or corrupt" in e.value for e in app.sidebar.error)
    assert app.session_state["family"] == "shipped:demo"  # still on a working model


def test_intervention_and_compare_pages_show_results(app: AppTest) -> None:
    app.radio(key="w_int_kind").set_value("SE off in one layer").run()
    _ok(app)
    assert any(m.label == "Top-1 changed" for m in app.metric)
    app.switch_page("pages/1_Compare.py").run()
    _ok(app)
    labels = {m.label for m in app.metric}
    assert {"Top-1 agree", "JS divergence", "Map rank correlation"} <= labels


def test_model_page_reports_parameters_and_assumptions(app: AppTest) -> None:
    app.switch_page("pages/4_Model.py").run()
    _ok(app)
    params = next(m for m in app.metric if m.label == "Parameters").value
    from sedensenet import load_checkpoint
    from sedensenet.models.densenet import count_parameters

    loaded = load_checkpoint(ROOT / "assets" / "models" / "demo-se.pt", device="cpu")
    assert params == f"{count_parameters(loaded.model):,}"


def test_real_photo_upload(app: AppTest) -> None:
    photo = ROOT / "assets" / "examples" / "photo-astronaut.jpg"
    img = Image.open(photo)
    assert img.size[0] >= 200
    app.file_uploader(key="w_uploads").set_value([("astronaut.jpg", photo.read_bytes(), "image/jpeg")]).run()
    _ok(app)
    assert any("Prediction" in s.value for s in app.subheader)


def test_downloads_tab_offers_data_and_png_export(app: AppTest) -> None:
    labels = {b.label for b in app.get("download_button")}
    assert {"Every SE record (CSV)", "Predictions + SE records (JSON)"} <= labels
    app.button(key="w_png").click().run()
    _ok(app)
    from sedensenet.figures import find_chromium

    if find_chromium():  # PNG rendered locally by kaleido + Chromium
        assert app.session_state["heat_png"][1][:8] == b"\x89PNG\r\n\x1a\n"
        assert "Excitation heat-map (PNG)" in {b.label for b in app.get("download_button")}
    else:  # a clear warning instead of a crash
        assert any("Chromium" in w.value for w in app.warning)
