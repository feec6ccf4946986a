"""Refresh ``docs/screenshots/``: every page of the app in headless Chromium, opened through share links (the
default weather pair, and the shapes demo once).

Run: ``python tools/screenshots.py`` (needs Chromium at /usr/bin/chromium and Playwright).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from app_server import app_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
VIEWS = {  # file → (page path, query); the weather pair is the app's default, the shapes demo stays selectable
    "explore.png": ("", "image=weather/dusk-launch-pad.jpg"),
    "explore-attribution.png": ("", "image=weather/hazy-summer-palace.jpg&view=Attribution"),
    "compare.png": ("Compare", "image=weather/hazy-summer-palace.jpg"),
    "class-statistics.png": ("Class_statistics", ""),
    "training.png": ("Training", ""),
    "model.png": ("Model", ""),
    "learn.png": ("Learn", "image=weather/dusk-launch-pad.jpg"),
    "presenter.png": ("", "image=weather/dusk-launch-pad.jpg&presenter=1"),
    "explore-shapes.png": ("", "model=shipped:demo&image=disagree-116-heart.png"),
}


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    OUT.mkdir(parents=True, exist_ok=True)
    with app_server() as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        for name, (path, query) in VIEWS.items():
            page.goto(f"{url}/{path}?{query}", timeout=600_000)
            for _ in range(2):
                page.wait_for_timeout(1500)
                page.wait_for_selector(IDLE, timeout=600_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT / name))
            print("wrote", OUT / name)
        browser.close()


if __name__ == "__main__":
    main()
