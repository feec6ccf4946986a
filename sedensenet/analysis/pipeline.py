"""The shared analysis pipeline used by the CLI and the app: images → tensor → capture/attribution → plain data."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from sedensenet.analysis.attribution import Attribution, attribute
from sedensenet.analysis.capture import Capture, capture_excitations
from sedensenet.data.images import model_input_view, preprocess
from sedensenet.errors import CheckpointError, ConfigError
from sedensenet.models.checkpoint import LoadedModel


def model_view(image: Image.Image, loaded: LoadedModel) -> Image.Image:
    """The image as the model sees it (resized and centre-cropped), for overlays that line up with maps."""
    return model_input_view(loaded.input_size, loaded.meta.resize)(image)


def run_capture(loaded: LoadedModel, images: Sequence[Image.Image]) -> Capture:
    """One capture forward over a batch of PIL images with the checkpoint's preprocessing.

    Finite weights can still overflow (values near 1e38): non-finite logits are an error, never NaN %.
    """
    cap = capture_excitations(loaded.model, preprocess(images, loaded.meta))
    if not bool(torch.isfinite(cap.logits).all()):
        raise CheckpointError("the model's outputs are not finite numbers for this image (its weights overflow "
                              "float32); the checkpoint is unusable — use an earlier one or retrain")
    return cap


def predictions(capture: Capture, classes: Sequence[str], k: int = 5, image: int = 0) -> list[dict[str, Any]]:
    """Top-``k`` rows ``{"index", "class", "prob"}`` for ``image`` of a capture."""
    return [{"index": i, "class": classes[i], "prob": p} for i, p in capture.top_k(k, image)]


def resolve_target(spec: str | int | None, capture: Capture, classes: Sequence[str], image: int = 0) -> int:
    """Class index from ``spec``: ``None``/``"pred"`` (top-1), ``"top2"``… (k-th most likely), a class name
    or an index. Anything else is a clear error listing the choices."""
    if spec is None or spec == "pred":
        return capture.top_k(1, image)[0][0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.lstrip("-").isdigit()):
        idx = int(spec)
        if not 0 <= idx < len(classes):
            raise ConfigError(f"target index {idx} is outside 0…{len(classes) - 1}")
        return idx
    if spec.startswith("top") and spec[3:].isdigit():
        k = int(spec[3:])
        if not 1 <= k <= len(classes):
            raise ConfigError(f"target {spec!r}: the model has {len(classes)} classes")
        return capture.top_k(k, image)[k - 1][0]
    if spec in classes:
        return list(classes).index(spec)
    shown = ", ".join(list(classes)[:12]) + (" …" if len(classes) > 12 else "")
    raise ConfigError(f"target {spec!r} is not 'pred', 'topK', a class index or a class name ({shown})")


def explain_image(loaded: LoadedModel, image: Image.Image, method: str, target: int, **options: Any) -> Attribution:
    """Attribution of one PIL image towards class ``target`` with the checkpoint's normalisation."""
    x = preprocess([image], loaded.meta)
    return attribute(loaded.model, x, method, target, mean=loaded.meta.mean, std=loaded.meta.std,
                     **options)[0]


def map_summary(values: np.ndarray) -> dict[str, Any]:
    """Shape, range and zero-ness of an attribution map."""
    return {"shape": list(values.shape), "min": float(values.min()), "max": float(values.max()),
            "all_zero": not bool(np.any(values))}


def display_view(image: Image.Image, loaded: LoadedModel, *, min_side: int = 256, max_side: int = 1024) -> Image.Image:
    """The model's view (same crop or letterbox) at a size people can read: the image's own resolution, kept
    within ``[min_side, max_side]`` and never below the model's input. Attribution maps are resized onto it."""
    resize = loaded.meta.resize
    natural = min(image.size) if resize == "crop" else max(image.size)
    side = max(min_side, loaded.input_size, min(natural, max_side))
    return model_input_view(side, resize)(image)


RECORD_COLUMNS = ("layer", "index", "block", "dense_layer", "placement", "channel", "squeeze", "excitation")
LOW_CONFIDENCE = 0.5


def records_table(capture: Capture, image: int = 0) -> list[dict[str, Any]]:
    """One row per (SE layer, channel) of ``image``: the long table users load into pandas or a spreadsheet."""
    return [{"layer": r.name, "index": r.index, "block": r.block, "dense_layer": r.layer, "placement": r.placement,
             "channel": c, "squeeze": float(r.squeeze[image, c]), "excitation": float(r.excitation[image, c])}
            for r in capture.records for c in range(r.channels)]


def records_csv(capture: Capture, image: int = 0) -> str:
    """:func:`records_table` as CSV text with a header row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RECORD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records_table(capture, image))
    return buf.getvalue()


def outside_note(top_prob: float, classes: Sequence[str], threshold: float = LOW_CONFIDENCE) -> str | None:
    """A plain warning when the top probability is below ``threshold``, else ``None``.

    A classifier has no "none of these" answer: softmax spreads 100 % over its classes whatever the image shows.
    A top class under 50 % means no class clearly wins, the usual sign of an image from outside the training
    world (a photo shown to a shapes model, a shape shown to a weather model).
    """
    if top_prob >= threshold:
        return None
    return (f"No class is clearly recognised (top probability {top_prob:.0%} < {threshold:.0%}). This model must "
            f"pick one of its {len(classes)} classes whatever the image shows, so the answer is a guess: the image "
            "is probably unlike what the model was trained on.")


def map_npy(values: np.ndarray) -> bytes:
    """An attribution map as ``.npy`` bytes (exact values, for notebooks)."""
    buf = io.BytesIO()
    np.save(buf, values)
    return buf.getvalue()


def map_png(values: np.ndarray) -> bytes:
    """An attribution map as a grey PNG: 128 = zero, brighter = positive, darker = negative (own scale)."""
    peak = float(np.abs(values).max()) or 1.0
    grey = (np.clip(values / peak, -1, 1) * 127 + 128).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    return buf.getvalue()
