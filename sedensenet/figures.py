"""Pure figure builders: arrays, records and histories in, Plotly figures out (no Streamlit here)."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sedensenet.analysis.flags import NEAR_CONSTANT_CAUSE, NEAR_CONSTANT_STD
from sedensenet.errors import SedensenetError
from sedensenet.text import clean_text

PALETTE = qualitative.Plotly


def plot_text(text: object) -> str:
    """A file-controlled string (class, file or run name) as literal Plotly text: Plotly renders a subset of HTML
    (``<b>``, ``<a href>``, ``<br>``) in labels and decodes entities, so ``<``, ``>`` and ``&`` become entities."""
    return html.escape(clean_text(str(text)), quote=False)


def training_curves(runs: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    """Train (dashed) and validation (solid) accuracy and loss per epoch; one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    for i, (raw_label, history) in enumerate(runs.items()):
        label = plot_text(raw_label)
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
                    hovertemplate=f"%{{fullData.name}}<br>{metric}: %{{y:.4f}}<br>epoch %{{x}}<extra></extra>"),
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


class ExportError(SedensenetError, RuntimeError):
    """A figure could not be rendered to PNG; the message says what to install (HTML export always works)."""


PNG_NEEDS_KALEIDO = ("PNG export needs the kaleido package: pip install kaleido (or reinstall sedensenet, which "
                     "depends on it). HTML export works without it.")
PNG_NEEDS_CHROMIUM = ("PNG export needs Chromium or Chrome on this machine: apt-get install chromium (Debian/Ubuntu), "
                      "or set BROWSER_PATH to a Chrome binary. HTML export works without it.")


def png_export_problem() -> str | None:
    """What is missing for PNG export, as one sentence saying what to install; None when export can work."""
    if importlib.util.find_spec("kaleido") is None:
        return PNG_NEEDS_KALEIDO
    if find_chromium() is None:
        return PNG_NEEDS_CHROMIUM
    return None


def figure_png(fig: go.Figure, *, width: int = 1000, height: int | None = None, scale: float = 1.0) -> bytes:
    """PNG bytes of ``fig`` via kaleido (needs a local Chromium; never downloads one)."""
    problem = png_export_problem()
    if problem:
        raise ExportError(problem)
    os.environ.setdefault("BROWSER_PATH", find_chromium() or "")
    try:
        return fig.to_image(format="png", width=width, height=height or fig.layout.height or 500, scale=scale)
    except Exception as exc:  # kaleido reports many kinds of browser failures, some over several lines
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ExportError(f"PNG export failed in the browser: {first[:200]}. HTML export works.") from None


def write_figure(fig: go.Figure, path: Path) -> list[Path]:
    """Write ``fig`` to ``path``: ``.html`` (self-contained) or ``.png`` (plus an ``.html`` twin)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    html = path.with_suffix(".html")
    fig.write_html(html, include_plotlyjs=True)
    if path.suffix.lower() == ".png":
        path.write_bytes(figure_png(fig))
        return [html, path]
    return [html]


_SHORT = (
    (re.compile(r"denseblock(\d+)\.denselayer(\d+)\.se_in$"), "b{0}.l{1} in"),
    (re.compile(r"denseblock(\d+)\.denselayer(\d+)"), "b{0}.l{1}"),
    (re.compile(r"transition(\d+)\.se$"), "t{0} in"),
    (re.compile(r"(?:^|\.)se_in(\d+)$"), "b{0} in"),
    (re.compile(r"(?:^|\.)se(\d+)$"), "after b{0}"),
    (re.compile(r"(?:^|\.)se_stem$"), "stem"),
    (re.compile(r"(?:^|\.)se_out$"), "after norm"),
)


def _short(name: str) -> str:
    """Axis label of an SE module name: ``features.denseblock2.denselayer3.se`` → ``b2.l3``, ``….se_in`` →
    ``b2.l3 in``, ``features.se_in2`` → ``b2 in``, ``features.se4`` → ``after b4``, ``features.transition1.se``
    → ``t1 in``, ``features.se_stem`` → ``stem``, ``features.se_out`` → ``after norm``; others unchanged."""
    for pattern, template in _SHORT:
        if m := pattern.search(name):
            return template.format(*m.groups())
    return name


def layer_labels(names: Sequence[str]) -> list[str]:
    """Short, unique labels for SE layer names (for axes)."""
    return [_short(n) for n in names]


FLAG = "⚠"


def excitation_heatmap(names: Sequence[str], rows: Sequence[Sequence[float]], title: str = "",
                       flagged: Sequence[int] = ()) -> go.Figure:
    """Layers × channels heat-map of excitations; ragged channel counts are padded with blanks.

    ``flagged`` layers (near-constant gates, see ``analysis.flags``) get a ⚠ before their label and a note.
    """
    width = max((len(r) for r in rows), default=0)
    z = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        z[i, : len(r)] = r
    marked = set(flagged)
    labels = [f"{FLAG} {label}" if i in marked else label for i, label in enumerate(layer_labels(names))]
    fig = go.Figure(go.Heatmap(
        z=z, y=labels, x=list(range(width)), colorscale="Viridis", zmin=0, zmax=1,
        colorbar={"title": "excitation"}, customdata=np.array(names, dtype=object)[:, None].repeat(width, 1)
        if len(names) else None,
        hovertemplate="%{customdata}<br>channel %{x}<br>excitation %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="SE layer (forward order)", type="category")
    fig.update_xaxes(title_text="channel")
    top = (40 if title else 10) + (26 if marked else 0)
    fig.update_layout(title=title or None, height=max(280, 16 * len(rows) + 120 + (26 if marked else 0)),
                      margin={"t": top, "b": 40, "l": 90, "r": 10})
    if marked:  # above the plot: below it the note collided with the x-axis title
        fig.add_annotation(text=f"{FLAG} near-constant layer here (gate std < {NEAR_CONSTANT_STD}): flat on every "
                                f"image = {NEAR_CONSTANT_CAUSE}, not a finding",
                           xref="paper", yref="paper", x=0, y=1, yshift=4,
                           xanchor="left", yanchor="bottom", showarrow=False, font={"size": 12})
    return fig


def channel_bars(excitation: Sequence[float], squeeze: Sequence[float], name: str,
                 selected: Sequence[int] = ()) -> go.Figure:
    """Per-channel excitation bars of one SE layer; hover shows squeeze too; selected channels highlighted."""
    chosen = set(selected)
    colours = np.array(["#EF553B" if i in chosen else "#636EFA" for i in range(len(excitation))], dtype=object)
    fig = go.Figure(go.Bar(
        x=np.arange(len(excitation)), y=np.asarray(excitation, dtype=float), marker_color=colours,
        customdata=np.asarray(squeeze, dtype=float),
        hovertemplate="channel %{x}<br>excitation %{y:.3f}<br>squeeze %{customdata:.3f}<extra></extra>"))
    # the 0.5 line as a plain layout shape (``add_hline`` costs ~0.1 s of subplot bookkeeping per figure)
    fig.update_layout(title=f"{name}: gate per channel", yaxis={"range": [0, 1], "title": "excitation"},
                      xaxis={"title": "channel"}, height=320, margin={"t": 40, "b": 40, "l": 50, "r": 10},
                      clickmode="event+select", dragmode="select",
                      shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 0.5, "y1": 0.5,
                               "line": {"dash": "dot", "color": "grey"}}],
                      annotations=[{"text": "gate 0.5", "xref": "paper", "x": 0, "yref": "y", "y": 0.5,
                                    "xanchor": "left", "yanchor": "bottom", "showarrow": False}])
    return fig


def squeeze_scatter(names: Sequence[str], squeezes: Sequence[Sequence[float]],
                    excitations: Sequence[Sequence[float]]) -> go.Figure:
    """Squeeze (pooled value) vs excitation (gate) of every channel, coloured by depth (colour bar = SE layer).

    One WebGL trace of numpy arrays for all layers (layer in ``text``, channel in ``customdata``): a trace of
    Python lists per layer cost a third of a second of Plotly validation per new image on a 2-core server."""
    labels = layer_labels(names)
    n = max(len(names) - 1, 1)
    ticks = sorted({0, n // 2, n}) if len(names) > 1 else [0]
    sizes = [len(sq) for sq in squeezes]
    x = np.concatenate([np.asarray(sq, dtype=float) for sq in squeezes]) if sizes else np.zeros(0)
    y = np.concatenate([np.asarray(e, dtype=float) for e in excitations]) if sizes else np.zeros(0)
    depth = np.repeat(np.arange(len(sizes)) / n, sizes)
    layer = np.repeat(np.array(labels, dtype=object), sizes)
    channel = np.concatenate([np.arange(k) for k in sizes]) if sizes else np.zeros(0, dtype=int)
    fig = go.Figure(go.Scattergl(
        x=x, y=y, mode="markers", text=layer, customdata=channel, showlegend=False,
        marker={"size": 5, "color": depth, "colorscale": "Viridis", "cmin": 0, "cmax": 1, "showscale": True,
                "colorbar": {"title": {"text": "SE layer"}, "tickvals": [t / n for t in ticks],
                             "ticktext": [labels[t] for t in ticks]}},
        hovertemplate="%{text}<br>channel %{customdata}<br>squeeze %{x:.3f}<br>excitation %{y:.3f}<extra></extra>"))
    fig.update_layout(xaxis_title="squeeze (channel mean)", yaxis_title="excitation (gate)", height=380,
                      margin={"t": 10, "b": 40, "l": 50, "r": 10})
    return fig


def depth_summary(names: Sequence[str], excitations: Sequence[Sequence[float]],
                  flagged: Sequence[int] = ()) -> go.Figure:
    """Mean ± std of the excitation per SE layer, with min/max band: how gating changes with depth.

    ``flagged`` layers (near-constant gates) are marked with a red ✕ and a legend entry saying why.
    """
    labels = layer_labels(names)
    mean = [float(np.mean(e)) for e in excitations]
    std = [float(np.std(e)) for e in excitations]
    fig = go.Figure([
        go.Scatter(x=labels, y=[float(np.max(e)) for e in excitations], line={"width": 0}, showlegend=False,
                   hoverinfo="skip"),
        go.Scatter(x=labels, y=[float(np.min(e)) for e in excitations], fill="tonexty", line={"width": 0},
                   name="min–max", fillcolor="rgba(99,110,250,0.15)", hoverinfo="skip"),
        go.Scatter(x=labels, y=mean, error_y={"type": "data", "array": std, "visible": True},
                   mode="lines+markers", name="mean ± std",
                   hovertemplate="%{x}<br>mean %{y:.3f}<extra></extra>"),
    ])
    if flagged:
        fig.add_trace(go.Scatter(
            x=[labels[i] for i in flagged], y=[mean[i] for i in flagged], mode="markers",
            marker={"symbol": "x", "size": 12, "color": "#D62728"},
            name=f"{FLAG} near-constant here (gate std < {NEAR_CONSTANT_STD})",
            hovertemplate=f"%{{x}}: near-constant gates here (std < {NEAR_CONSTANT_STD})<br>"
                          f"flat on every image = {NEAR_CONSTANT_CAUSE}<extra></extra>"))
    fig.update_layout(yaxis={"range": [0, 1], "title": "excitation"}, xaxis={"title": "SE layer", "type": "category"},
                      height=320, margin={"t": 10, "b": 40, "l": 50, "r": 10}, legend={"orientation": "h"})
    return fig


def prediction_bars(rows: Sequence[dict], title: str = "") -> go.Figure:
    """Horizontal bars of top-k class probabilities."""
    labels = [plot_text(r["class"]) for r in rows][::-1]
    fig = go.Figure(go.Bar(x=[r["prob"] for r in rows][::-1], y=labels, orientation="h",
                           text=[f"{r['prob']:.1%}" for r in rows][::-1], textposition="auto",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title=title or None, xaxis={"range": [0, 1], "tickformat": ".0%"},
                      height=60 + 32 * len(rows), margin={"t": 30 if title else 5, "b": 20, "l": 10, "r": 10})
    return fig


def probability_change(classes: Sequence[str], before: Sequence[float], after: Sequence[float]) -> go.Figure:
    """Grouped bars: class probabilities before and after an intervention."""
    fig = go.Figure([go.Bar(name="as trained", x=[plot_text(c) for c in classes], y=list(before)),
                     go.Bar(name="with intervention", x=[plot_text(c) for c in classes], y=list(after))])
    fig.update_layout(barmode="group", yaxis={"range": [0, 1], "tickformat": ".0%"}, height=320,
                      margin={"t": 10, "b": 40, "l": 50, "r": 10}, legend={"orientation": "h"})
    return fig


def class_excitation(classes: Sequence[str], mean: Sequence[Sequence[float]], title: str) -> go.Figure:
    """SENet §7 style: mean excitation per channel, one line per class, for one SE layer."""
    fig = go.Figure()
    for i, (c, row) in enumerate(zip(classes, mean, strict=True)):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(y=list(row), mode="lines", name=plot_text(c), line={"color": colour},
                                 hovertemplate="%{fullData.name}<br>channel %{x}<br>mean excitation %{y:.3f}"
                                               "<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="channel", yaxis={"title": "mean excitation", "range": [0, 1]},
                      height=330, margin={"t": 40, "b": 40, "l": 50, "r": 10})
    return fig


def specificity_by_depth(names: Sequence[str], values: Sequence[float]) -> go.Figure:
    """Class-specificity (between-class spread of mean excitation) for each SE layer, in depth order."""
    fig = go.Figure(go.Scatter(x=layer_labels(names), y=list(values), mode="lines+markers",
                               hovertemplate="%{x}<br>specificity %{y:.4f}<extra></extra>"))
    fig.update_layout(xaxis={"title": "SE layer (depth →)", "type": "category"},
                      yaxis_title="between-class spread", height=320, margin={"t": 10, "b": 40, "l": 50, "r": 10})
    return fig


def feature_map(values: Sequence[Sequence[float]], title: str, zmax: float | None = None) -> go.Figure:
    """One channel's spatial map as a heat-map."""
    fig = go.Figure(go.Heatmap(z=values, colorscale="Viridis", zmin=0 if zmax else None, zmax=zmax,
                               hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=title, height=280, margin={"t": 40, "b": 10, "l": 10, "r": 10})
    return fig


def _luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    rgb = [int(hex_colour.lstrip("#")[i: i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 … 21; ≥ 4.5 reads well as body text)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill``."""
    return "#000000" if contrast_ratio(fill, "#000000") >= contrast_ratio(fill, "#ffffff") else "#ffffff"


SE_BADGE = "#C0392B"


def architecture_diagram(stages: Sequence[tuple[str, str, int]],
                         se_marks: Sequence[str] | Mapping[str, str]) -> go.Figure:
    """Block diagram: ``stages`` = (name, kind, channels-out); stages with SE get a red badge (hover: where in the
    stage, when ``se_marks`` maps stage names to a description). Every label is black or white, whichever
    contrasts more with its box (WCAG ratio ≥ 4.5 for the colours used)."""
    fig = go.Figure()
    colours = {"stem": "#B6E880", "block": "#636EFA", "transition": "#FECB52", "norm": "#AB63FA", "head": "#00CC96"}
    marks = dict(se_marks) if isinstance(se_marks, Mapping) else dict.fromkeys(se_marks, "")
    for i, (name, kind, channels) in enumerate(stages):
        fill = colours.get(kind, "#cccccc")
        fig.add_shape(type="rect", x0=i, x1=i + 0.85, y0=0, y1=1, fillcolor=fill, line={"width": 1, "color": "#333"})
        fig.add_annotation(x=i + 0.425, y=0.5, text=f"{name}<br>{channels} ch", showarrow=False,
                           font={"size": 12, "color": text_colour(fill)})
        if name in marks:
            fig.add_shape(type="rect", x0=i + 0.1, x1=i + 0.75, y0=1.08, y1=1.45, fillcolor=SE_BADGE,
                          line={"width": 0})
            fig.add_annotation(x=i + 0.425, y=1.265, text="SE", showarrow=False,
                               font={"color": text_colour(SE_BADGE), "size": 12},
                               hovertext=f"SE {marks[name]}" if marks[name] else None)
    fig.update_xaxes(visible=False, range=[-0.1, len(stages)])
    fig.update_yaxes(visible=False, range=[-0.2, 1.6])
    fig.update_layout(height=200, margin={"t": 10, "b": 10, "l": 10, "r": 10}, plot_bgcolor="white")
    return fig


def overlay_figure(rgba: np.ndarray, *, sign: str, scale: float, title: str = "", height: int = 360) -> go.Figure:
    """An attribution overlay (RGBA from ``attribution.overlay``) with its colour scale as a colour bar.

    The image travels as one PNG data URI (small), the colour bar comes from an invisible heat-map trace.
    """
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgba, dtype=np.uint8)).save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    signed = sign == "signed"
    colours = "RdBu_r" if signed else "Inferno"
    top = scale if scale > 0 else 1.0
    unit = {"positive": "attribution (> 0)", "absolute": "|attribution|", "signed": "attribution"}.get(sign, sign)
    fig = go.Figure(go.Image(source=uri, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(z=[[-top if signed else 0.0, top]], colorscale=colours, zmin=-top if signed else 0.0,
                             zmax=top, opacity=0, hoverinfo="skip", showscale=True,
                             colorbar={"title": {"text": unit}, "thickness": 14, "tickformat": ".2g"},
                             x=[0, 1], y=[0, 1]))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(title=title or None, height=height, margin={"t": 40 if title else 5, "b": 5, "l": 5, "r": 5})
    return fig


PRESENTER_FONT = 22


def presenter_style(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` for a projector: large type, black on white, thick lines and markers."""
    out = go.Figure(fig)
    out.update_layout(template="simple_white", font={"size": PRESENTER_FONT, "color": "black"},
                      height=int((fig.layout.height or 360) * 1.25), paper_bgcolor="white", plot_bgcolor="white")
    out.update_xaxes(showgrid=True, gridcolor="#bbbbbb", linecolor="black", tickfont={"size": PRESENTER_FONT - 2})
    out.update_yaxes(showgrid=True, gridcolor="#bbbbbb", linecolor="black", tickfont={"size": PRESENTER_FONT - 2})
    out.update_traces(selector={"type": "scatter"}, line={"width": 4}, marker={"size": 10})
    out.update_traces(selector={"type": "bar"}, marker_line={"width": 1.5, "color": "black"},
                      textfont={"size": PRESENTER_FONT})
    return out
