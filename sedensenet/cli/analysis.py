"""``sedensenet predict`` and ``sedensenet explain``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sedensenet.analysis.attribution import METHODS, SIGN_MODES
from sedensenet.cli.options import add_device, add_json
from sedensenet.cli.output import json_text, say
from sedensenet.errors import ConfigError


def add_predict_parser(sub: Any) -> None:
    """Register ``predict``."""
    p = sub.add_parser("predict", help="top-k predictions for one or more images",
                       description="Classify images with a checkpoint (sedensenet file or DenseNet state_dict).")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth): sedensenet or DenseNet state_dict")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="one or more image files (PNG, JPEG, WebP, BMP, GIF)")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    add_device(p)
    add_json(p, "print one JSON document (schema in README)")
    p.set_defaults(handler=_cmd_predict)


def _load_all(paths: list[str]) -> list[Image.Image]:
    from sedensenet.data.images import load_image

    return [load_image(p) for p in paths]


def _cmd_predict(args: argparse.Namespace) -> int:
    from sedensenet.analysis.pipeline import predictions, run_capture
    from sedensenet.models.checkpoint import load_checkpoint

    if args.top < 1:
        raise ConfigError("--top must be ≥ 1")
    images = _load_all(args.images)
    loaded = load_checkpoint(args.checkpoint, device=args.device)
    cap = run_capture(loaded, images)
    doc = {"checkpoint": args.checkpoint, "device": str(loaded.device), "se": loaded.config.se,
           "scores": cap.activation,
           "predictions": [{"image": path, "top": predictions(cap, loaded.classes, args.top, i)}
                           for i, path in enumerate(args.images)]}
    if args.json:
        print(json_text(doc))
        return 0
    if cap.activation == "sigmoid":
        print("multi-label model: independent sigmoid scores per class (they do not sum to 1)")
    for row in doc["predictions"]:
        say(row["image"])
        for r in row["top"]:
            say(f"  {r['prob']:7.2%}  {r['class']}")
    return 0


def add_explain_parser(sub: Any) -> None:
    """Register ``explain``."""
    p = sub.add_parser("explain", help="predictions, every SE record and an attribution map for one image",
                       description="Explain one image: top predictions, squeeze/excitation of every SE layer, and an "
                                   "attribution map saved as .npy plus an overlay .png in --out.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth): sedensenet or DenseNet state_dict")
    p.add_argument("image", metavar="IMAGE", help="the image to explain (PNG, JPEG, WebP, BMP, GIF)")
    p.add_argument("--method", default="integrated_gradients", choices=sorted(METHODS), metavar="METHOD",
                   help="attribution method (default integrated_gradients): " + "; ".join(
                       f"{m.name} = {m.label}" for m in METHODS.values()))
    p.add_argument("--target", default="pred",
                   help="class to explain: pred (default), top2/top3…, a class name or index")
    p.add_argument("--layer", default=None, help="layer for " + ", ".join(
        m.name for m in METHODS.values() if m.needs_layer) + " (default: the last feature map)")
    p.add_argument("--smoothgrad", type=int, default=0, help="SmoothGrad samples (0 = off) for " + ", ".join(
        m.name for m in METHODS.values() if m.smoothgrad))
    p.add_argument("--sign", default="positive", choices=SIGN_MODES, help="sign mode of the overlay")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    p.add_argument("--out", default="explain-out", help="folder for the .npy map and overlay .png")
    add_device(p)
    add_json(p, "print one JSON document (schema in README)")
    p.set_defaults(handler=_cmd_explain)


def _cmd_explain(args: argparse.Namespace) -> int:
    from sedensenet.analysis.attribution import overlay
    from sedensenet.analysis.flags import NEAR_CONSTANT_NOTE, near_constant_layers
    from sedensenet.analysis.pipeline import (
        display_view,
        explain_image,
        map_summary,
        predictions,
        resolve_target,
        run_capture,
    )
    from sedensenet.models.checkpoint import load_checkpoint

    image = _load_all([args.image])[0]
    loaded = load_checkpoint(args.checkpoint, device=args.device)
    cap = run_capture(loaded, [image])
    target = resolve_target(args.target, cap, loaded.classes)
    attr = explain_image(loaded, image, args.method, target, layer=args.layer, smoothgrad=args.smoothgrad)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", f"{Path(args.image).stem}-{args.method}-{loaded.classes[target]}")[:120]
    npy, png = out / f"{stem}.npy", out / f"{stem}.png"
    np.save(npy, attr.map)
    Image.fromarray(overlay(display_view(image, loaded), attr.map, sign=args.sign)).save(png)
    doc = {"checkpoint": args.checkpoint, "image": args.image, "device": str(loaded.device), "se": loaded.config.se,
           "predictions": predictions(cap, loaded.classes, args.top),
           "target": {"index": target, "class": loaded.classes[target]}, "method": args.method,
           "map_npy": str(npy), "overlay_png": str(png), "map": map_summary(attr.map),
           "se_records": [r.as_dict(0) for r in cap.records]}
    if args.json:
        print(json_text(doc))
        return 0
    say(f"{args.image}: " + ", ".join(f"{r['class']} {r['prob']:.1%}" for r in doc["predictions"][:3]))
    say(f"{args.method} towards '{loaded.classes[target]}' → {npy}, {png}")
    if doc["map"]["all_zero"]:
        print("note: the attribution map is all zero for this image and target")
    print(f"{len(cap.records)} SE layers:")
    flagged = set(near_constant_layers([r.excitation[0] for r in cap.records]))
    for i, r in enumerate(cap.records):
        e = r.excitation[0]
        print(f"  {r.name:<40} C={r.channels:<5} excitation mean {float(e.mean()):.3f} "
              f"min {float(e.min()):.3f} max {float(e.max()):.3f}" + ("  ⚠ near-constant" if i in flagged else ""))
    if flagged:
        print(f"⚠ {NEAR_CONSTANT_NOTE}")
    return 0


COMMANDS = (add_predict_parser, add_explain_parser)
