"""``sedensenet report``: one image's analysis as a self-contained HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sedensenet.analysis.attribution import METHODS
from sedensenet.cli.options import add_device
from sedensenet.errors import ConfigError


def _methods(text: str) -> list[str]:
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"choose comma-separated methods from {', '.join(METHODS)}")
    return chosen


def add_report_parser(sub: Any) -> None:
    """Register ``report``."""
    p = sub.add_parser("report", help="one image's analysis as a self-contained HTML report",
                       description="Write one HTML file (opens offline, figures inline, images embedded) with the "
                                   "prediction, the SE heat-map and depth summary, attribution overlays and, with "
                                   "--baseline, the SE model vs its baseline.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth): the SE model")
    p.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, WebP, BMP, GIF)")
    p.add_argument("--baseline", metavar="CKPT", default=None,
                   help="baseline checkpoint (same classes) to compare with, e.g. demo-baseline.pt")
    p.add_argument("--methods", type=_methods, default=["gradcam", "integrated_gradients"],
                   help="comma-separated attribution methods (default gradcam,integrated_gradients)")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    add_device(p)
    p.add_argument("--out", default="report.html", help="output HTML file (default report.html)")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from sedensenet.data.images import load_image
    from sedensenet.models.checkpoint import load_checkpoint
    from sedensenet.report import build_report

    if args.top < 1:
        raise ConfigError("--top must be ≥ 1")
    image = load_image(args.image)
    loaded = load_checkpoint(args.checkpoint, device=args.device)
    baseline = load_checkpoint(args.baseline, device=args.device) if args.baseline else None
    doc = build_report(loaded, image, Path(args.image).name, checkpoint=Path(args.checkpoint).name,
                       baseline=baseline, baseline_checkpoint=Path(args.baseline).name if args.baseline else "",
                       methods=args.methods, top=args.top)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({len(doc.encode()) / 1e6:.1f} MB)")
    return 0


COMMANDS = (add_report_parser,)
