"""A self-contained HTML report of one image's analysis, for homework or slides.

:func:`render_report` is pure (inputs → one HTML string): Plotly's JavaScript is embedded once, figures inline, the
image and overlays as PNG data URIs, so the file opens offline in any browser and can be mailed as one file.
Every string that comes from a user (image name, checkpoint name, class names) is HTML-escaped.
:func:`collect_report` computes those inputs from loaded models with the shared analysis pipeline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from sedensenet.errors import ConfigError

DEFAULT_METHODS = ("gradcam", "integrated_gradients")


@dataclass(frozen=True)
class ModelPart:
    """One model's part of the report: what it predicts and where it looks."""

    label: str
    checkpoint: str
    arch: str
    se: str
    predictions: list[dict[str, Any]]
    overlays: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (caption, H×W×3|4 uint8)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; figures are Plotly figures, images arrays or PIL images."""

    image_name: str
    image: Image.Image | np.ndarray
    model: ModelPart
    baseline: ModelPart | None = None
    heatmap: go.Figure | None = None
    depth: go.Figure | None = None
    se_notes: list[str] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    title: str = "SE-DenseNet analysis"
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def png_data_uri(image: Image.Image | np.ndarray, *, min_side: int = 256) -> str:
    """``data:image/png;base64,…`` of an image; small images are upscaled (nearest) to ``min_side`` so they
    stay readable in the report."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    short = min(pil.size)
    if 0 < short < min_side:
        factor = -(-min_side // short)
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figure(fig: go.Figure, div_id: str) -> str:
    # Plotly's JSON escapes "<", ">" and "/" inside strings, so class names cannot close the script tag.
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _prediction_table(part: ModelPart) -> str:
    rows = "".join(f"<tr><td>{_e(r['class'])}</td><td class='num'>{r['prob']:.1%}</td>"
                   f"<td><div class='bar' style='width:{max(0.0, min(1.0, float(r['prob']))) * 100:.1f}%'></div>"
                   f"</td></tr>" for r in part.predictions)
    return f"<table class='pred'><tr><th>class</th><th>probability</th><th></th></tr>{rows}</table>"


def _model_section(part: ModelPart) -> str:
    top = part.predictions[0] if part.predictions else None
    head = (f"<p class='verdict'><b>{_e(top['class'])}</b> ({top['prob']:.1%})</p>" if top else "")
    overlays = "".join(f"<figure><img alt='{_e(cap)}' src='{png_data_uri(img)}'><figcaption>{_e(cap)}</figcaption>"
                       f"</figure>" for cap, img in part.overlays)
    return (f"<section class='model'><h3>{_e(part.label)}</h3>"
            f"<p class='meta'>{_e(part.checkpoint)} · {_e(part.arch)} · SE: {_e(part.se)}</p>"
            f"{head}{_prediction_table(part)}<div class='row'>{overlays}</div></section>")


def _comparison(comp: dict[str, Any]) -> str:
    labels = {"top1_se": "SE model top-1", "top1_baseline": "baseline top-1", "top1_agree": "top-1 agree",
              "js_divergence": "JS divergence (0 = same, 1 = disjoint)",
              "total_variation": "total variation of probabilities",
              "spearman": "attribution rank correlation (|map|)", "top10_iou": "top-10 % region IoU",
              "se_off": "SE model with every gate = 1 (SE off)"}
    rows = []
    for key, value in comp.items():
        shown = (("yes" if value else "no") if isinstance(value, bool)
                 else f"{value:.3f}" if isinstance(value, float) else value)
        rows.append(f"<tr><td>{_e(labels.get(key, key))}</td><td>{_e(shown)}</td></tr>")
    return f"<table class='cmp'>{''.join(rows)}</table>"


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
 color:#111;background:#fff;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#444;font-size:.9rem}.verdict{font-size:1.3rem;margin:.3rem 0}
.row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.models{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1.5rem}
figure{margin:0}figure img{width:300px;image-rendering:pixelated;border:1px solid #ccc}
figcaption{font-size:.85rem;color:#333;max-width:300px}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{height:.8rem;background:#3b5bdb;min-width:1px;width:0}.pred td:last-child{width:160px}
.note{background:#fff4e5;border-left:4px solid #e8590c;padding:.4rem .8rem;margin:.5rem 0}
footer{margin-top:2rem;color:#555;font-size:.85rem}
"""


def render_report(inputs: ReportInputs) -> str:
    """One self-contained HTML document (Plotly's JavaScript inline once, images as data URIs)."""
    from plotly.offline import get_plotlyjs

    parts = [f"<h1>{_e(inputs.title)}</h1>",
             f"<p class='meta'>Image <b>{_e(inputs.image_name)}</b> · made {_e(inputs.created)} with sedensenet</p>",
             "<div class='row'><figure><img alt='the image as the model sees it' "
             f"src='{png_data_uri(inputs.image)}'><figcaption>{_e(inputs.image_name)}, as the model sees it"
             "</figcaption></figure></div>",
             "<h2>Prediction and attribution</h2>",
             "<p>Overlays: bright = pixels that raised the score of the explained class (each map on its own scale "
             "unless a shared scale is stated).</p>",
             f"<div class='models'>{_model_section(inputs.model)}"
             f"{_model_section(inputs.baseline) if inputs.baseline else ''}</div>"]
    if inputs.heatmap is not None or inputs.depth is not None:
        parts.append("<h2>SE channel gates</h2><p>Each row is one SE layer (input → output), each cell one channel's "
                     "gate: 1 = passed unchanged, 0 = silenced.</p>")
        parts += [f"<p class='note'>{_e(note)}</p>" for note in inputs.se_notes]
        if inputs.heatmap is not None:
            parts.append(_figure(inputs.heatmap, "se-heatmap"))
        if inputs.depth is not None:
            parts.append("<h3>Depth summary</h3>" + _figure(inputs.depth, "se-depth"))
    if inputs.comparison:
        parts.append("<h2>SE model vs baseline</h2>" + _comparison(inputs.comparison))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(inputs.title)} — {_e(inputs.image_name)}</title><style>{STYLE}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head>\n<body>\n{body}\n"
            "<footer>Self-contained report: no network needed to view it. Numbers are from one image and one "
            "model; they describe this case, not SE in general.</footer>\n</body></html>\n")


def collect_report(loaded: Any, image: Image.Image, image_name: str, *, checkpoint: str = "SE model",
                   baseline: Any | None = None, baseline_checkpoint: str = "baseline",
                   methods: Sequence[str] = DEFAULT_METHODS, top: int = 5) -> ReportInputs:
    """Run the analysis the report shows: predictions, SE records, attributions (towards the SE model's top-1,
    the same target for the baseline, on one shared colour scale per method) and the SE-vs-baseline comparison."""
    from sedensenet import figures
    from sedensenet.analysis.attribution import METHODS, overlay, shared_scale
    from sedensenet.analysis.compare import map_agreement, prediction_agreement
    from sedensenet.analysis.flags import near_constant_layers, near_constant_message
    from sedensenet.analysis.interventions import Intervention, run_intervention
    from sedensenet.analysis.pipeline import explain_image, model_view, predictions, run_capture
    from sedensenet.data.images import preprocess

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown attribution method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if baseline is not None and list(baseline.classes) != list(loaded.classes):
        raise ConfigError("the baseline has different classes from the model, so they cannot be compared")
    classes = loaded.classes
    k = min(top, len(classes))
    cap = run_capture(loaded, [image])
    target = cap.top_k(1)[0][0]
    view = model_view(image, loaded)
    models = [(loaded, cap)]
    base_cap = None
    if baseline is not None:
        base_cap = run_capture(baseline, [image])
        models.append((baseline, base_cap))
    overlays: list[list[tuple[str, np.ndarray]]] = [[] for _ in models]
    first_maps: list[np.ndarray] = []
    for method in methods:
        maps = [explain_image(m, image, method, target).map for m, _ in models]
        scale = shared_scale(maps)
        if not first_maps:
            first_maps = maps
        shared = " (shared scale)" if len(maps) > 1 else ""
        for i, values in enumerate(maps):
            overlays[i].append((f"{METHODS[method].label} → {classes[target]}{shared}",
                                overlay(model_view(image, models[i][0]), values, scale=scale)))
    heat = depth = None
    notes: list[str] = []
    if cap.records:
        names = [r.name for r in cap.records]
        rows = [r.excitation[0].tolist() for r in cap.records]
        flagged = near_constant_layers(rows)
        heat = figures.excitation_heatmap(names, rows, flagged=flagged)
        depth = figures.depth_summary(names, rows, flagged=flagged)
        message = near_constant_message(figures.layer_labels(names), flagged)
        notes = [message] if message else []
    part = ModelPart("SE model" if loaded.config.se != "none" else "Model", checkpoint, loaded.config.arch,
                     loaded.config.se, predictions(cap, classes, k), overlays[0])
    base_part = comparison = None
    if baseline is not None and base_cap is not None:
        base_part = ModelPart("Baseline", baseline_checkpoint, baseline.config.arch, baseline.config.se,
                              predictions(base_cap, classes, k), overlays[1])
        comparison = dict(prediction_agreement(cap.probs[0], base_cap.probs[0], list(classes)))
        if first_maps:
            comparison.update(map_agreement(first_maps[0], first_maps[1]))
        if cap.records:
            off = run_intervention(loaded.model, preprocess([image], loaded.meta), Intervention(off="all"))
            s = off.summary(classes)
            comparison["se_off"] = (f"{s['before']['class']} {s['before']['prob']:.1%} → "
                                    f"{s['after']['class']} {s['after']['prob']:.1%}")
    return ReportInputs(image_name=image_name, image=view, model=part, baseline=base_part, heatmap=heat,
                        depth=depth, se_notes=notes, comparison=comparison)


def build_report(loaded: Any, image: Image.Image, image_name: str, **options: Any) -> str:
    """:func:`collect_report` then :func:`render_report`: one call from models and an image to the HTML."""
    return render_report(collect_report(loaded, image, image_name, **options))
