"""Pure figure builders: arrays, records and histories in, Plotly figures out (no Streamlit here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly


def training_curves(runs: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    """Train (dashed) and validation (solid) accuracy and loss per epoch; one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    for i, (label, history) in enumerate(runs.items()):
        colour = PALETTE[i % len(PALETTE)]
        epochs = [h["epoch"] for h in history]
        for col, metric in ((1, "acc"), (2, "loss")):
            for split, dash in (("train", "dash"), ("val", "solid")):
                key = f"{split}_{metric}"
                if not all(key in h for h in history):
                    continue
                fig.add_trace(go.Scatter(
                    x=epochs, y=[h[key] for h in history], mode="lines+markers", name=f"{label} {split}",
                    legendgroup=label, line={"color": colour, "dash": dash}, showlegend=True if col == 1 else False,
                    hovertemplate=f"{label}<br>{split} {metric}: %{{y:.4f}}<br>epoch %{{x}}<extra></extra>"),
                    row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(title_text="loss", row=1, col=2)
    fig.update_layout(height=420, margin={"t": 40, "b": 40, "l": 50, "r": 20}, legend={"orientation": "h", "y": -0.2})
    return fig


def find_chromium() -> str | None:
    """A Chromium/Chrome binary for kaleido's PNG export (``BROWSER_PATH`` first), or None."""
    for candidate in (os.environ.get("BROWSER_PATH"), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if candidate and (path := shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)):
            return path
    return None


def figure_png(fig: go.Figure, *, width: int = 1000, height: int | None = None, scale: float = 1.0) -> bytes:
    """PNG bytes of ``fig`` via kaleido (needs a local Chromium; never downloads one)."""
    browser = find_chromium()
    if browser is None:
        raise RuntimeError("PNG export needs Chromium or Chrome (e.g. apt-get install chromium, or set "
                           "BROWSER_PATH); HTML export works without it")
    os.environ.setdefault("BROWSER_PATH", browser)
    try:
        return fig.to_image(format="png", width=width, height=height or fig.layout.height or 500, scale=scale)
    except Exception as exc:  # kaleido reports many kinds of browser failures
        raise RuntimeError(f"PNG export failed ({exc}); HTML export still works") from None


def write_figure(fig: go.Figure, path: Path) -> list[Path]:
    """Write ``fig`` to ``path``: ``.html`` (self-contained) or ``.png`` (plus an ``.html`` twin)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    html = path.with_suffix(".html")
    fig.write_html(html, include_plotlyjs=True)
    if path.suffix.lower() == ".png":
        path.write_bytes(figure_png(fig))
        return [html, path]
    return [html]
