"""The HTML report: self-contained (one Plotly bundle, images as data URIs), escaped, and faithful to the models."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from helpers import tiny
from PIL import Image

from sedensenet import load_checkpoint, save_checkpoint
from sedensenet.cli.main import main
from sedensenet.data.demo import DEMO_CLASSES, make_sample
from sedensenet.data.images import preprocess
from sedensenet.report import ModelPart, ReportInputs, build_report, collect_report, png_data_uri, render_report

HOSTILE = "<img src=x onerror=alert(1)>"


def _data_uris(doc: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(m)))
            for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", doc)]


def _inputs(name: str = "cat.png", classes: tuple[str, ...] = ("cat", "dog")) -> ReportInputs:
    part = ModelPart("SE model", "m.pt", "demo", "layer",
                     [{"index": 0, "class": classes[0], "prob": 0.75}, {"index": 1, "class": classes[1], "prob": 0.25}],
                     [("Grad-CAM → x", np.zeros((32, 32, 4), np.uint8))])
    heat = go.Figure(go.Heatmap(z=[[0.1, 0.9]]))
    depth = go.Figure(go.Scatter(x=["b1.l1"], y=[0.5], name=classes[1]))
    return ReportInputs(image_name=name, image=np.zeros((64, 48, 3), np.uint8), model=part, heatmap=heat,
                        depth=depth, se_notes=["⚠ b1.l1 — near-constant"], created="2026-01-01 00:00 UTC")


def test_render_is_self_contained_with_one_plotly_bundle() -> None:
    doc = render_report(_inputs())
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    from plotly.offline import get_plotlyjs

    assert doc.count(get_plotlyjs()) == 1  # the bundle, inline, exactly once
    rest = doc.replace(get_plotlyjs(), "")
    assert "<script src" not in rest and "cdn.plot.ly" not in rest and "http" not in rest  # nothing fetched
    assert doc.count("Plotly.newPlot") == 2 and "id=\"se-heatmap\"" in doc and "id=\"se-depth\"" in doc
    images = _data_uris(doc)
    assert len(images) == 2 and all(im.format == "PNG" for im in images)
    assert min(images[0].size) >= 256 and images[0].size == (48 * 6, 64 * 6)  # 48 px → ×6 ≥ 256, aspect kept
    assert "75.0%" in doc and "near-constant" in doc


def test_user_strings_are_escaped_everywhere() -> None:
    doc = render_report(_inputs(name=HOSTILE, classes=(HOSTILE, "</script><script>alert(2)</script>")))
    assert HOSTILE not in doc and "<script>alert(2)" not in doc
    assert "&lt;img src=x onerror=alert(1)&gt;" in doc  # shown as text, not as markup


def test_png_data_uri_keeps_large_images() -> None:
    img = Image.fromarray(np.full((300, 400, 3), 7, np.uint8))
    uri = png_data_uri(img)
    back = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert back.size == (400, 300) and np.asarray(back)[0, 0].tolist() == [7, 7, 7]


@pytest.fixture
def pair(tmp_path: Path):
    meta = {"classes": list(DEMO_CLASSES), "input_size": 64}
    se = save_checkpoint(tmp_path / "m-se.pt", tiny("layer"), meta)
    base = save_checkpoint(tmp_path / "m-baseline.pt", tiny("none"), meta)
    img = tmp_path / "star.png"
    Image.fromarray(make_sample(3, 0, 80).image).save(img)
    return se, base, img


def test_collect_matches_the_models_own_outputs(pair) -> None:
    se_path, base_path, img_path = pair
    se, base = load_checkpoint(se_path, device="cpu"), load_checkpoint(base_path, device="cpu")
    image = Image.open(img_path).convert("RGB")
    inputs = collect_report(se, image, "star.png", baseline=base, methods=("gradcam", "saliency"), top=3)
    x = preprocess([image], se.meta)
    with torch.no_grad():
        p_se, p_base = torch.softmax(se.model(x), 1)[0], torch.softmax(base.model(x), 1)[0]
    expected = [DEMO_CLASSES[i] for i in p_se.argsort(descending=True)[:3].tolist()]
    assert [r["class"] for r in inputs.model.predictions] == expected
    assert inputs.model.predictions[0]["prob"] == pytest.approx(float(p_se.max()), abs=1e-5)
    assert inputs.baseline.predictions[0]["class"] == DEMO_CLASSES[int(p_base.argmax())]
    assert len(inputs.model.overlays) == len(inputs.baseline.overlays) == 2
    assert all(o.shape == (64, 64, 4) for _, o in inputs.model.overlays)
    assert inputs.comparison["top1_agree"] == (int(p_se.argmax()) == int(p_base.argmax()))
    n_se = sum(1 for name, _ in se.model.named_modules() if name.endswith(".se"))
    assert n_se > 0 and len(inputs.heatmap.data[0].y) == n_se
    doc = render_report(inputs)
    assert doc.count("<figure>") == 1 + 4  # the image + 2 methods × 2 models


def test_baseline_only_model_has_no_se_section(pair) -> None:
    _se, base_path, img_path = pair
    base = load_checkpoint(base_path, device="cpu")
    doc = build_report(base, Image.open(img_path).convert("RGB"), "star.png", methods=("saliency",))
    assert "SE channel gates" not in doc and "Plotly.newPlot" not in doc and "SE model vs baseline" not in doc


def test_unknown_method_and_mismatched_classes_are_clear_errors(pair) -> None:
    se_path, base_path, img_path = pair
    se = load_checkpoint(se_path, device="cpu")
    image = Image.open(img_path).convert("RGB")
    with pytest.raises(ValueError, match="unknown attribution method"):
        collect_report(se, image, "x", methods=("nope",))
    other = save_checkpoint(Path(base_path).with_name("o.pt"), tiny("none"),
                            {"classes": [f"c{i}" for i in range(8)], "input_size": 64})
    with pytest.raises(ValueError, match="different classes"):
        collect_report(se, image, "x", baseline=load_checkpoint(other, device="cpu"))


def test_cli_report_writes_one_file(pair, tmp_path: Path, capsys) -> None:
    se_path, base_path, img_path = pair
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(se_path), str(img_path), "--baseline", str(base_path), "--methods", "saliency",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    doc = out.read_text(encoding="utf-8")
    assert "star.png" in doc and "SE model vs baseline" in doc and "m-baseline.pt" in doc
    assert not list(out.parent.glob("*.tmp"))


def test_cli_report_bad_method_is_a_usage_error(pair, capsys) -> None:
    se_path, _base, img_path = pair
    with pytest.raises(SystemExit) as exc:
        main(["report", str(se_path), str(img_path), "--methods", "gradcam,bogus"])
    assert exc.value.code == 2 and "choose comma-separated methods" in capsys.readouterr().err
