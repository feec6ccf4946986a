"""``sedensenet info``: what a checkpoint holds (the typed :class:`~sedensenet.models.summary.ModelSummary`)."""

from __future__ import annotations

import argparse
from typing import Any

from sedensenet.cli.options import add_device, add_json
from sedensenet.cli.output import json_text, say


def add_info_parser(sub: Any) -> None:
    """Register ``info``."""
    p = sub.add_parser("info", help="describe a checkpoint (architecture, SE placement, classes, params)",
                       description="Describe a checkpoint: sedensenet file or raw DenseNet state_dict.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth/.safetensors/.keras/.h5)")
    add_json(p)
    add_device(p)
    p.set_defaults(handler=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from sedensenet.models.checkpoint import load_checkpoint
    from sedensenet.models.summary import summarise

    info = summarise(load_checkpoint(args.checkpoint, device=args.device))
    if args.json:
        print(json_text(info.as_dict()))
        return 0
    classes = info.classes
    shown = ", ".join(classes[:10]) + (f" … ({len(classes)} in all)" if len(classes) > 10 else "")
    rows = [
        ("architecture", f"{info.arch} (blocks {info.block_config}, growth {info.growth_rate}, {info.stem} stem)"),
        ("SE placement", f"{info.se} ({info.se_layers} SE layers, hidden {info.se_hidden}, "
                         f"bias {'on' if info.se_bias else 'off'})"),
        ("parameters", f"{info.parameters:,} ({info.se_parameters:,} in SE)"),
        ("input", f"{info.input_size}×{info.input_size}, mean {info.mean}, std {info.std}"),
        ("classes", shown),
        ("classifier", info.head + (" (multi-label: independent sigmoid scores)"
                                    if info.head_activation == "sigmoid" else "")),
        ("file", str(info.family)),
        ("loaded as", f"{info.source} on {info.device}"),
        ("epochs trained", str(info.epochs_trained)),
    ]
    rows[2:2] = [(f"  {s['site']}", f"{s['where']}: {s['SE modules']} × {s['channels']} ch, hidden {s['hidden']} "
                                   f"({s['width rule']}), bias {'on' if s['bias'] else 'off'}, {s['variant']}"
                  + ("" if s["blocks"] == "all" else f", blocks {s['blocks']}")) for s in info.se_sites]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        say(f"{key:<{width}}  {value}")
    for note in info.assumed:
        say(f"{'assumed':<{width}}  {note}")
    for note in info.warnings:
        say(f"{'warning':<{width}}  {note}")
    return 0


COMMANDS = (add_info_parser,)
