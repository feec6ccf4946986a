"""Browser tests: the real app in headless Debian Chromium via Playwright (run by .ci/run).

Needs /usr/bin/chromium (``apt-get install chromium``); without it these tests fail on CI and are skipped with
the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
pytestmark = [pytest.mark.browser, pytest.mark.slow]

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytestmark.append(pytest.mark.skip(reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server() -> Iterator[str]:
    port = _free_port()
    log = open(ARTIFACTS / f"server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless=true",
         "--server.fileWatcherType=none", "--browser.gatherUsageStats=false", "--server.address=127.0.0.1",
         f"--server.port={port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "SEDENSENET_MODELS"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"streamlit did not become healthy; see {log.name}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is required for the browser tests: apt-get install chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _idle(page, timeout: float = 240_000) -> None:
    page.wait_for_timeout(500)
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout)


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    errors = page.locator("[data-testid='stAlertContentError']")
    assert errors.count() == 0, errors.all_inner_texts()


def test_upload_photo_explore_switch_and_compare(browser) -> None:
    with server() as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=120_000)
        _idle(page)
        page.locator("[data-testid='stMain'] [data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
            str(ROOT / "assets" / "examples" / "photo-astronaut.jpg"))
        _idle(page)
        chip = page.locator("[data-testid='stMain'] [data-testid='stFileChipName']").first
        assert chip.get_attribute("title") == "photo-astronaut.jpg"
        _no_exception(page)
        text = page.locator("[data-testid='stMain']").inner_text()
        assert "Prediction" in text and "%" in text
        assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # predictions + SE heat-map
        page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)
        page.get_by_role("tab", name="Attribution").click()
        _idle(page)
        overlay = page.locator("[data-testid='stImage']").filter(has_text="→")
        overlay.first.wait_for(timeout=120_000)
        assert overlay.first.locator("img").evaluate("i => i.naturalWidth") > 0
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "explore-attribution.png"), full_page=True)
        page.locator("[data-testid='stSidebar']").get_by_text("Baseline (no SE)").click()
        _idle(page)
        _no_exception(page)
        page.get_by_role("tab", name="SE excitations").click()
        assert "no SE layers" in page.locator("[data-testid='stMain']").inner_text()
        page.screenshot(path=str(ARTIFACTS / "explore-baseline.png"), full_page=True)
        page.locator("[data-testid='stSidebarNav'], [data-testid='stSidebar']").first.get_by_text("SE model").click()
        _idle(page)
        _no_exception(page)
        for name in ("Compare", "Class statistics", "Training", "Model", "Learn"):
            page.locator("[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']").filter(
                has_text=name).first.click()
            _idle(page)
            _no_exception(page)
            page.screenshot(path=str(ARTIFACTS / f"{name.lower().replace(' ', '-')}.png"), full_page=True)
            if name == "Compare":
                assert "Top-1 agree" in page.locator("[data-testid='stMain']").inner_text()


def test_four_concurrent_sessions_on_a_cold_server(browser) -> None:
    with server() as url:
        contexts = [browser.new_context() for _ in range(4)]
        pages = [c.new_page() for c in contexts]
        # all four sessions connect within a moment of each other: their first script runs overlap on the
        # cold server (the import race this guards against happens exactly there)
        targets = [("", "Prediction"), ("/Compare", "Top-1 agree"), ("", "Prediction"), ("/Learn", "Squeeze")]
        for p, (path, _) in zip(pages, targets, strict=True):  # two sessions start on other pages
            p.goto(url + path, wait_until="commit", timeout=120_000)
        for i, p in enumerate(pages):
            _idle(p)
            _no_exception(p)
            assert targets[i][1] in p.locator("[data-testid='stMain']").inner_text()
            p.screenshot(path=str(ARTIFACTS / f"concurrent-{i}.png"))
        for c in contexts:
            c.close()


def test_curves_png_export_uses_local_chromium(tmp_path) -> None:
    from sedensenet.cli.main import main

    assert CHROMIUM, "Chromium is required: apt-get install chromium"
    out = tmp_path / "curves.png"
    ckpts = [str(ROOT / "assets" / "models" / f"demo-{v}.pt") for v in ("se", "baseline")]
    assert main(["curves", *ckpts, "--out", str(out)]) == 0
    from PIL import Image

    img = Image.open(out)
    assert img.format == "PNG" and img.size[0] >= 800
    assert (tmp_path / "curves.html").is_file()
