"""The HTML report opens in Chromium offline and its Plotly figures and images render."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.slow]
if CHROMIUM is None:
    pytestmark.append(pytest.mark.skip(reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"))


def test_report_renders_figures_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from sedensenet.cli.main import main

    out = tmp_path / "report.html"
    models = ROOT / "assets" / "models"
    assert main(["report", str(models / "demo-se.pt"), str(ROOT / "assets" / "examples" / "star.png"),
                 "--baseline", str(models / "demo-baseline.pt"), "--methods", "gradcam", "--device", "cpu",
                 "--out", str(out)]) == 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(offline=True)  # self-contained: nothing may be fetched
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_selector("#se-heatmap .main-svg", timeout=30_000)
        page.wait_for_selector("#se-depth .main-svg", timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 2
        assert page.locator("#se-heatmap .heatmaplayer image, #se-heatmap .hm").count() >= 1  # heat-map drawn
        sizes = page.locator("img").evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.complete])")
        assert len(sizes) == 3 and all(w >= 256 and done for w, done in sizes)  # image + 2 overlays
        text = page.locator("body").inner_text()
        assert "SE model vs baseline" in text and "star" in text
        assert not errors, errors
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
