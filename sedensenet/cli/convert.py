"""``sedensenet convert IN OUT``: any loadable file (Keras, wrapped fine-tune, timm/Lightning, safetensors) →
a sedensenet checkpoint, so later loads need no inference and carry their metadata."""

from __future__ import annotations

import argparse
from typing import Any

from sedensenet.cli.options import add_json

KEPT = ("classes", "input_size", "mean", "std", "history")


def add_convert_parser(sub: Any) -> None:
    """Register ``convert``."""
    p = sub.add_parser("convert", help="convert any loadable checkpoint to a sedensenet checkpoint",
                       description="Read IN (sedensenet file, DenseNet state_dict in any wrapper, timm/Lightning "
                                   "checkpoint, .safetensors, Keras .keras/.weights.h5/.h5) and write a sedensenet "
                                   "checkpoint OUT with its architecture, head and metadata.")
    p.add_argument("source", metavar="IN", help="file to read (.pt/.pth/.pth.tar/.ckpt/.safetensors/.keras/.h5)")
    p.add_argument("target", metavar="OUT", help="sedensenet checkpoint to write (.pt)")
    p.add_argument("--ema", action="store_true",
                   help="take the EMA weights (timm state_dict_ema, ema …) where the file has both")
    add_json(p)
    p.set_defaults(handler=_cmd_convert)


def _cmd_convert(args: argparse.Namespace) -> int:
    from sedensenet.cli.output import json_text, say
    from sedensenet.models.checkpoint import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(args.source, device="cpu", ema=True if args.ema else None)
    stored = loaded.meta.stored()
    meta = {k: stored[k] for k in KEPT if k in stored}
    meta["converted_from"] = loaded.meta.family or loaded.meta.source
    meta["converted_assumptions"] = list(loaded.meta.assumed)
    path = save_checkpoint(args.target, loaded.model, meta)
    doc = {"source": args.source, "target": str(path), "family": meta["converted_from"],
           "arch": loaded.config.arch, "se": loaded.config.se, "classes": len(loaded.classes),
           "assumed": meta["converted_assumptions"]}
    if args.json:
        print(json_text(doc))
        return 0
    say(f"{args.source} ({doc['family']}) → {path}")
    for note in doc["assumed"]:
        say(f"  assumed: {note}")
    return 0


COMMANDS = (add_convert_parser,)
