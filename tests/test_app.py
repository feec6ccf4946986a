"""AppTest: every page renders on the shipped models, with uploads, variants and every attribution method,
and the defects a newcomer hit (picker label, stale target, hidden recomputation, unclear image, second upload)
stay fixed."""

from __future__ import annotations

import ast
import io

import pytest
import torch
from app_harness import (
    ROOT,
    app_env,  # noqa: F401  (autouse fixture for this module)
    figure_specs,
    figure_titles,
    fresh_app,
)
from PIL import Image
from streamlit.testing.v1 import AppTest

from sedensenet.analysis import pipeline
from sedensenet.analysis.attribution import METHODS
from sedensenet.app.registry import PAGES
from sedensenet.data.demo import make_sample
from sedensenet.data.images import load_image, preprocess
from sedensenet.models.checkpoint import load_checkpoint

PAGE_FILES = [f"pages/{p.file}" for p in PAGES]
MODELS = ROOT / "assets" / "models"
WEATHER = all((MODELS / f"weather-{v}.pt").is_file() for v in ("se", "baseline"))
DEFAULT_FAMILY = "shipped:weather" if WEATHER else "shipped:demo"


@pytest.fixture
def app() -> AppTest:
    return fresh_app()


@pytest.fixture
def demo() -> AppTest:
    """A session on the shipped shapes pair (whatever the default is), on the arrow example."""
    return fresh_app({"model": "shipped:demo", "image": "arrow.png"})


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _png(seed: int = 1, index: int = 3) -> bytes:
    buf = io.BytesIO()
    make_sample(seed, index, 96).pil.save(buf, "PNG")
    return buf.getvalue()


def _probs(variant: str, data: bytes, family: str = "demo") -> torch.Tensor:
    """The model's probabilities computed here, independently of the app."""
    loaded = load_checkpoint(MODELS / f"{family}-{variant}.pt", device="cpu")
    with torch.no_grad():
        return torch.softmax(loaded.model(preprocess([load_image(data)], loaded.meta)), 1)[0]


def _classes(family: str = "demo") -> list[str]:
    return load_checkpoint(MODELS / f"{family}-se.pt", device="cpu").classes


def _main_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.main.markdown] + [c.value for c in at.main.caption])


# ---- structure ----------------------------------------------------------------------------------------------

def test_registry_lists_every_page_file_once() -> None:
    files = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert sorted(p.file for p in PAGES) == files
    assert len({p.url for p in PAGES}) == len(PAGES)


def test_pages_are_layout_only() -> None:
    """Pages import Streamlit, pandas and the library; never torch or numpy (the maths lives in sedensenet/)."""
    for path in (ROOT / "pages").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"torch", "numpy", "captum"}, (path.name, imported)
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not names & {"set_page_config", "sidebar"}, path.name  # the frame draws those, once


def test_default_model_is_the_weather_pair_when_shipped(app: AppTest) -> None:
    _ok(app)
    assert app.session_state["family"] == DEFAULT_FAMILY
    assert app.sidebar.selectbox(key="family").value == DEFAULT_FAMILY
    labels = app.sidebar.selectbox(key="family").options
    assert any("demo" in label for label in labels)  # the shapes demo stays selectable


def test_every_page_renders_with_the_shared_sidebar(demo: AppTest) -> None:
    _ok(demo)
    assert len(demo.get("plotly_chart")) >= 5  # prediction, heat-map, bars, scatter, depth
    for page in PAGE_FILES:
        demo.switch_page(page).run()
        _ok(demo)
        title = next(p.title for p in PAGES if f"pages/{p.file}" == page)
        assert demo.title and title.split()[0].lower() in demo.title[0].value.lower(), page
        assert demo.sidebar.selectbox(key="family").value == "shipped:demo"  # the sidebar on every page
        assert demo.sidebar.radio(key="variant").value == "se"


def test_switching_se_and_baseline_keeps_image_and_persists_across_pages(demo: AppTest) -> None:
    demo.file_uploader(key="w_uploads").set_value([("star.png", _png(), "image/png")]).run()
    _ok(demo)
    assert demo.session_state["image"].startswith("upload:")
    demo.sidebar.radio(key="variant").set_value("baseline").run()
    _ok(demo)
    assert demo.session_state["variant"] == "baseline"
    assert "star.png" in _main_text(demo)
    assert any("no SE layers" in i.value for i in demo.info)
    for page in PAGE_FILES:
        demo.switch_page(page).run()
        _ok(demo)
        assert demo.sidebar.radio(key="variant").value == "baseline"
    demo.sidebar.radio(key="variant").set_value("se").run()
    demo.switch_page("pages/explore.py").run()
    _ok(demo)
    assert demo.sidebar.radio(key="variant").value == "se"
    assert "star.png" in _main_text(demo)


def _attribution_tab(at: AppTest) -> AppTest:
    at.session_state["view"] = "Attribution"
    return at.run()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_attribution_method_renders(demo: AppTest, method: str) -> None:
    _attribution_tab(demo).selectbox(key="w_method").set_value(method).run()
    _ok(demo)
    compute = [b for b in demo.button if b.key == "compute"]
    if method in ("integrated_gradients", "gradient_shap", "occlusion"):
        assert compute, "an expensive method waits for a click"
        compute[0].click().run()
        _ok(demo)
    assert demo.session_state["last_map"][0] == method
    assert any(t.endswith("→ arrow") for t in figure_titles(demo))


# ---- defect 1: the picker names an uploaded checkpoint -------------------------------------------------------

def test_uploaded_checkpoint_is_selected_and_named_in_the_picker(demo: AppTest) -> None:
    data = (MODELS / "demo-baseline.pt").read_bytes()
    demo.sidebar.file_uploader(key="w_ckpt_upload").set_value(("mine.pt", data, "application/octet-stream")).run()
    _ok(demo)
    picker = demo.sidebar.selectbox(key="family")
    assert picker.value.startswith("upload:")
    assert picker.options[picker.index] == "mine.pt (uploaded)"
    assert "SE: **none**" in "\n".join(c.value for c in demo.sidebar.caption)  # the baseline file is in use
    picker.set_value("shipped:demo").run()  # choosing the shipped pair again works
    _ok(demo)
    assert demo.sidebar.selectbox(key="family").options[demo.sidebar.selectbox(key="family").index].startswith(
        "demo")


def test_bad_checkpoint_upload_is_refused_clearly(demo: AppTest) -> None:
    demo.sidebar.file_uploader(key="w_ckpt_upload").set_value(("evil.pt", b"PK\x03\x04garbage", "application/x"))
    demo.run()
    assert not demo.exception
    assert any("truncated or corrupt" in e.value for e in demo.sidebar.error)
    assert demo.session_state["family"] == "shipped:demo"  # still on a working model


# ---- defect 2: the target follows the current model ----------------------------------------------------------

def test_target_label_and_map_follow_a_switch_to_the_baseline(demo: AppTest) -> None:
    name = "disagree-116-heart.png"  # the SE model says triangle, the baseline heart
    data = (ROOT / "assets" / "examples" / name).read_bytes()
    classes = _classes()
    se_top, base_top = (classes[int(_probs(v, data).argmax())] for v in ("se", "baseline"))
    assert se_top != base_top
    demo.selectbox(key="w_image").set_value(f"example:{name}").run()
    _attribution_tab(demo)
    _ok(demo)
    assert any(t.endswith(f"→ {se_top}") for t in figure_titles(demo))
    demo.sidebar.radio(key="variant").set_value("baseline").run()
    _ok(demo)
    assert any(t.endswith(f"→ {base_top}") for t in figure_titles(demo))  # top-1 of the *current* model
    p = float(_probs("baseline", data)[classes.index(base_top)])
    assert f"Target **{base_top}**: {p:.1%} under the baseline" in _main_text(demo)
    demo.selectbox(key="w_target").set_value("star").run()  # a named class: its probability under this model
    p_star = float(_probs("baseline", data)[classes.index("star")])
    assert f"Target **star**: {p_star:.1%} under the baseline" in _main_text(demo)
    demo.sidebar.radio(key="variant").set_value("se").run()
    p_star_se = float(_probs("se", data)[classes.index("star")])
    assert f"Target **star**: {p_star_se:.1%} under the SE model" in _main_text(demo)
    assert any(t.endswith("→ star") for t in figure_titles(demo))


# ---- defect 3: nothing expensive runs on an unrelated change ------------------------------------------------

def test_no_attribution_is_recomputed_by_an_unrelated_change(demo: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = pipeline.explain_image

    def counting(loaded, image, method, target, **kw):
        calls.append(method)
        return real(loaded, image, method, target, **kw)

    monkeypatch.setattr(pipeline, "explain_image", counting)
    _attribution_tab(demo)
    assert calls == ["gradcam"]  # the open tab's cheap default is shown at once
    calls.clear()
    demo.selectbox(key="w_method").set_value("integrated_gradients").run()
    _ok(demo)
    assert calls == []  # selecting an expensive method computes nothing yet
    demo.button(key="compute").click().run()
    assert calls == ["integrated_gradients"]
    demo.slider(key="w_opacity").set_value(0.3).run()
    demo.session_state["view"] = "SE excitations"
    demo.run()
    demo.sidebar.radio(key="variant").set_value("baseline").run()  # on the SE tab: no attribution at all
    _ok(demo)
    assert calls == ["integrated_gradients"]
    _attribution_tab(demo)
    assert calls == ["integrated_gradients"]  # the baseline's IG waits for its own click
    assert [b for b in demo.button if b.key == "compute"]
    demo.sidebar.radio(key="variant").set_value("se").run()  # back: shown from the cache
    _ok(demo)
    assert calls == ["integrated_gradients"]
    assert any(t.startswith("Integrated Gradients →") for t in figure_titles(demo))


# ---- defects 7 and 13: which image is analysed --------------------------------------------------------------

@pytest.mark.parametrize("page", ["pages/explore.py", "pages/compare.py", "pages/learn.py"])
def test_analysed_image_is_named_shown_and_labelled(demo: AppTest, page: str) -> None:
    demo.switch_page(page).run()
    _ok(demo)
    picker = demo.selectbox(key="w_image")
    assert picker.value == "example:arrow.png"
    assert "arrow" in picker.options[picker.index]
    assert "Analysing **arrow.png** — true label **arrow** (labels.json)" in _main_text(demo)
    assert demo.main.get("image"), "a thumbnail of the analysed image"


def test_a_second_upload_becomes_the_analysed_image(demo: AppTest) -> None:
    first, second = _png(1, 3), _png(2, 6)  # a star, then a ring
    demo.file_uploader(key="w_uploads").set_value([("first.png", first, "image/png")]).run()
    _ok(demo)
    demo.file_uploader(key="w_uploads").set_value([("first.png", first, "image/png"),
                                                    ("second.png", second, "image/png")]).run()
    _ok(demo)
    assert "Analysing **second.png**" in _main_text(demo)
    classes = _classes()
    probs = _probs("se", second)
    expected = f"**{classes[int(probs.argmax())]}** ({float(probs.max()):.1%})"
    assert expected in _main_text(demo)
    demo.selectbox(key="w_image").set_value(demo.session_state["uploads"][0]["key"]).run()  # back to the first
    assert "Analysing **first.png**" in _main_text(demo)


@pytest.mark.parametrize("payload,name", [(b"definitely not an image", "bad.png"),
                                          (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "truncated.png")])
def test_bad_upload_shows_one_error_and_no_exception(demo: AppTest, payload: bytes, name: str) -> None:
    demo.file_uploader(key="w_uploads").set_value([(name, payload, "image/png")]).run()
    assert not demo.exception
    errors = [e.value for e in demo.error]
    assert len(errors) == 1 and name in errors[0] and "could not be read as an image" in errors[0]
    assert "Analysing **arrow.png**" in _main_text(demo)  # still a clear, working view


def test_camera_photo_becomes_the_analysed_image(demo: AppTest) -> None:
    demo.toggle(key="w_use_camera").set_value(True).run()
    buf = io.BytesIO()
    make_sample(3, 1, 120).pil.save(buf, "JPEG")
    demo.camera_input(key="w_camera").set_value(("photo.jpg", buf.getvalue(), "image/jpeg")).run()
    _ok(demo)
    assert "Analysing **camera-1.jpg**" in _main_text(demo)


def test_real_photo_upload_is_selected_and_explained(demo: AppTest) -> None:
    photo = ROOT / "assets" / "examples" / "photo-astronaut.jpg"
    assert Image.open(photo).size[0] >= 200
    demo.file_uploader(key="w_uploads").set_value([("astronaut.jpg", photo.read_bytes(), "image/jpeg")]).run()
    _ok(demo)
    assert "Analysing **astronaut.jpg**" in _main_text(demo)
    probs = _probs("se", photo.read_bytes())
    assert f"({float(probs.max()):.1%})" in _main_text(demo)
    assert "The model knows 8 classes: circle, square" in _main_text(demo)
    note = [w.value for w in demo.warning if "must pick one of its 8 classes" in w.value]
    assert bool(note) == (float(probs.max()) < 0.5)


# ---- results ------------------------------------------------------------------------------------------------

def test_intervention_and_compare_pages_show_results(demo: AppTest) -> None:
    demo.session_state["view"] = "Interventions"
    demo.run()
    demo.radio(key="w_int_kind").set_value("SE off in one layer").run()
    _ok(demo)
    assert any(m.label == "Top-1 changed" for m in demo.metric)
    demo.switch_page("pages/compare.py").run()
    _ok(demo)
    labels = {m.label for m in demo.metric}
    assert {"Top-1 agree", "JS divergence", "Map rank correlation"} <= labels
    assert sum(t.startswith("Grad-CAM →") for t in figure_titles(demo)) == 2


def test_model_page_reports_parameters(demo: AppTest) -> None:
    demo.switch_page("pages/model.py").run()
    _ok(demo)
    params = next(m for m in demo.metric if m.label == "Parameters").value
    from sedensenet.models.densenet import count_parameters

    loaded = load_checkpoint(MODELS / "demo-se.pt", device="cpu")
    assert params == f"{count_parameters(loaded.model):,}"


def test_downloads_tab_offers_data_and_png_export(demo: AppTest) -> None:
    demo.session_state["view"] = "Downloads"
    demo.run()
    labels = {b.label for b in demo.get("download_button")}
    assert {"Every SE record (CSV)", "Predictions + SE records (JSON)"} <= labels
    demo.button(key="w_png").click().run()
    _ok(demo)
    from sedensenet.figures import find_chromium

    if find_chromium():  # PNG rendered locally by kaleido + Chromium
        assert demo.session_state["heat_png"][1][:8] == b"\x89PNG\r\n\x1a\n"
        assert "Excitation heat-map (PNG)" in {b.label for b in demo.get("download_button")}
    else:  # a clear warning instead of a crash
        assert any("Chromium" in w.value for w in demo.warning)


# ---- classroom: share links and presenter mode --------------------------------------------------------------

def test_share_link_restores_the_view_and_the_url_follows_changes() -> None:
    at = fresh_app({"model": "shipped:demo", "variant": "baseline", "image": "star.png", "view": "Attribution",
                    "method": "saliency", "opacity": "0.4"})
    _ok(at)
    assert at.sidebar.radio(key="variant").value == "baseline"
    assert "Analysing **star.png**" in _main_text(at)
    assert at.selectbox(key="w_method").value == "saliency"
    assert at.slider(key="w_opacity").value == pytest.approx(0.4)
    assert any(t.startswith("Saliency →") for t in figure_titles(at))  # the Attribution tab is the open one
    at.sidebar.radio(key="variant").set_value("se").run()
    assert at.query_params["variant"] == "se"
    assert at.query_params["image"] == "star.png" and at.query_params["method"] == "saliency"


def test_share_link_with_unknown_values_falls_back_to_defaults() -> None:
    at = fresh_app({"model": "nope", "image": "../../etc/passwd", "method": "bogus", "view": "nothing"})
    _ok(at)
    assert at.session_state["family"] == DEFAULT_FAMILY
    assert at.selectbox(key="w_image").value.startswith("example:")


def test_presenter_mode_enlarges_type_and_hides_controls(demo: AppTest) -> None:
    _attribution_tab(demo)
    assert demo.radio(key="w_sign") is not None
    demo.sidebar.toggle(key="presenter").set_value(True).run()
    _ok(demo)
    fonts = [spec["layout"].get("font", {}).get("size") for spec in figure_specs(demo)]
    assert fonts and all(f == 22 for f in fonts)
    keys = {w.key for w in demo.main.radio} | {w.key for w in demo.main.get("number_input")}
    assert "w_sign" not in keys and "w_smooth" not in keys  # fewer controls
    assert not demo.main.get("file_uploader") and not demo.sidebar.get("file_uploader")
    assert len(demo.tabs) == 3  # no downloads tab
    assert any("font-size: 22px" in str(getattr(h, "proto", "")) for h in demo.get("html"))
    assert demo.query_params["presenter"] == "1"


def test_every_page_renders_on_the_default_pair(app: AppTest) -> None:
    """The default pair (weather when shipped) on every page; its two models may see different input sizes."""
    _ok(app)
    for page in PAGE_FILES[1:]:
        app.switch_page(page).run()
        _ok(app)
        assert app.sidebar.selectbox(key="family").value == DEFAULT_FAMILY


# ---- the weather pair (real photos) -------------------------------------------------------------------------

@pytest.mark.skipif(not WEATHER, reason="the weather pair is not shipped in assets/models")
def test_weather_default_analyses_a_shipped_photo_and_a_camera_photo(app: AppTest) -> None:
    """The default view: a shipped weather photo, its prediction equal to the library's own; then a photo from the
    camera becomes the analysed image with the library's prediction."""
    _ok(app)
    photos = {p.name: p for p in (ROOT / "assets" / "examples" / "weather").glob("*.jpg")}
    shown = [name for name in photos if f"Analysing **{name}**" in _main_text(app)]
    assert len(shown) == 1, _main_text(app)
    classes = _classes("weather")
    probs = _probs("se", photos[shown[0]].read_bytes(), "weather")
    assert f"**{classes[int(probs.argmax())]}** ({float(probs.max()):.1%})" in _main_text(app)
    assert f"The model knows 4 classes: {', '.join(classes)}" in _main_text(app)
    app.toggle(key="w_use_camera").set_value(True).run()
    sky = Image.new("RGB", (320, 240), (90, 150, 230))  # a plain blue sky, as a classroom camera might take it
    buf = io.BytesIO()
    sky.save(buf, "JPEG")
    app.camera_input(key="w_camera").set_value(("photo.jpg", buf.getvalue(), "image/jpeg")).run()
    _ok(app)
    assert "Analysing **camera-1.jpg**" in _main_text(app)
    probs = _probs("se", buf.getvalue(), "weather")
    assert f"**{classes[int(probs.argmax())]}** ({float(probs.max()):.1%})" in _main_text(app)


@pytest.mark.skipif(not WEATHER, reason="the weather pair is not shipped in assets/models")
def test_weather_class_statistics_show_the_stored_real_photo_statistics(app: AppTest) -> None:
    app.switch_page("pages/class_statistics.py").run()
    _ok(app)
    assert app.radio(key="w_stats_source_stored").value == "Stored with the checkpoint"
    assert not app.main.get("file_uploader")  # nothing to upload on the page
    assert any(t.value.startswith("Computed on: weather photos, validation + test") for t in app.text)
    stored = load_checkpoint(MODELS / "weather-se.pt", device="cpu").meta.extra["class_statistics"]
    specs = figure_specs(app)
    specificity = specs[0]["data"][0]["y"]
    assert specificity == pytest.approx([layer["specificity"] for layer in stored["layers"]], rel=1e-6)
    assert [t["name"] for t in specs[1]["data"]] == stored["classes"]
