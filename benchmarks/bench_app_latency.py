"""Interaction latency of the app in a real browser: from the user's action to the app being idle again.

Cached interactions only (each one is done once to warm the caches, then timed): pick an example image,
switch a tab, switch SE ⇄ baseline, change the overlay opacity. Headless Debian Chromium via Playwright; the
app runs on this machine, so browser and server share its cores (as on a teacher's laptop).

Run: ``nice -n 10 python benchmarks/bench_app_latency.py --repeats 7``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from app_server import app_server

IDLE_JS = """
() => { window.__idle = []; const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => { if (app.getAttribute('data-test-script-state') === 'notRunning')
      window.__idle.push(performance.now()); }).observe(app, {attributes: true}); }
"""
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def settle(page) -> None:
    page.wait_for_selector(IDLE, timeout=300_000)
    page.wait_for_timeout(400)
    page.wait_for_selector(IDLE, timeout=300_000)


def timed(page, action) -> float:
    """Seconds from ``action`` to the end of the rerun it caused."""
    t0 = page.evaluate("performance.now()")
    action()
    page.wait_for_function("t0 => window.__idle.some(t => t > t0)", arg=t0, timeout=300_000)
    done = page.evaluate("t0 => Math.min(...window.__idle.filter(t => t > t0))", t0)
    settle(page)
    return (done - t0) / 1000


def pick_example(page, stem: str):
    def act() -> None:
        page.locator("[data-testid='stMain'] input[aria-label='Analysed image']").click()
        page.get_by_role("option").filter(has_text=f"{stem} — example").first.click()
    return act


def tab(page, name: str):
    return lambda: page.get_by_role("tab", name=name).click()


def variant(page, label: str):
    return lambda: page.locator("[data-testid='stSidebar']").get_by_text(label, exact=True).click()


def opacity(page, key: str):
    return lambda: page.locator("[data-testid='stMain'] input[type='range'][aria-label='Opacity']").first.press(key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--model", default="", help="family key, e.g. shipped:demo (default: the app's default)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    query = f"?model={args.model}" if args.model else ""
    times: dict[str, list[float]] = {k: [] for k in ("pick an example", "switch tab", "switch SE ⇄ baseline",
                                                     "change opacity")}
    with app_server(log=Path("/tmp/bench_latency_server.log")) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/" + query, timeout=300_000)
        settle(page)
        page.evaluate(IDLE_JS)
        current = page.locator("[data-testid='stMain'] input[aria-label='Analysed image']").input_value()
        if "dusk-launch-pad" in current:  # the weather pair (the default): two other weather photos
            stems = ["hazy-summer-palace", "coffee-cup"]
        else:
            stems = ["circle", "star"] if "circle" not in current else ["star", "square"]
        # warm every cache the timed loop will hit (both images × both models × both tabs, the opacity steps)
        for stem in stems:
            timed(page, pick_example(page, stem))
            for v in ("Baseline (no SE)", "SE model"):
                timed(page, variant(page, v))
                for name in ("Attribution", "SE excitations"):
                    timed(page, tab(page, name))
        timed(page, tab(page, "Attribution"))
        for key in ("ArrowLeft", "ArrowRight"):
            timed(page, opacity(page, key))
        for r in range(args.repeats):
            times["change opacity"].append(timed(page, opacity(page, "ArrowLeft" if r % 2 == 0 else "ArrowRight")))
            times["switch SE ⇄ baseline"].append(timed(page, variant(page, "Baseline (no SE)")))
            times["switch SE ⇄ baseline"].append(timed(page, variant(page, "SE model")))
            times["switch tab"].append(timed(page, tab(page, "SE excitations")))
            times["pick an example"].append(timed(page, pick_example(page, stems[r % 2])))
            times["switch tab"].append(timed(page, tab(page, "Attribution")))
        browser.close()
    print("| interaction (cached) | n | median s | p95 s | max s |")
    print("|---|---|---|---|---|")
    for name, v in times.items():
        p95 = statistics.quantiles(v, n=100, method="inclusive")[94] if len(v) > 1 else v[0]
        print(f"| {name} | {len(v)} | {statistics.median(v):.2f} | {p95:.2f} | {max(v):.2f} |")


if __name__ == "__main__":
    main()
