"""Command line: ``sedensenet COMMAND …`` (every command has ``--help``; ``--json`` prints one JSON document)."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sedensenet.cli.output import json_text, say, terminal
from sedensenet.cli.quickhelp import DESCRIPTION, EPILOG, is_top_level_help, top_level_parser
from sedensenet.errors import SedensenetError

if TYPE_CHECKING:
    from sedensenet.models.checkpoint import LoadedModel

Handler = Callable[[argparse.Namespace], int]


def model_summary(loaded: LoadedModel) -> dict[str, Any]:
    """Architecture, SE placement, classes, parameter counts and input size of a loaded checkpoint."""
    from sedensenet.models.densenet import count_parameters, se_input_widths
    from sedensenet.models.summary import se_parameters, se_site_table

    cfg = loaded.config
    return {
        "arch": cfg.arch,
        "se": cfg.se,
        "se_layers": len(se_input_widths(cfg)),
        "se_hidden": cfg.se_hidden if cfg.se_hidden is not None else f"C // {cfg.se_reduction} (≥ 1)",
        "se_bias": cfg.se_bias,
        "se_sites": se_site_table(cfg),
        "growth_rate": cfg.growth_rate,
        "block_config": list(cfg.block_config),
        "num_init_features": cfg.num_init_features,
        "stem": cfg.stem,
        "num_classes": cfg.num_classes,
        "classes": loaded.classes,
        "parameters": count_parameters(loaded.model),
        "se_parameters": se_parameters(loaded.model),
        "input_size": loaded.input_size,
        "mean": list(loaded.meta.mean),
        "std": list(loaded.meta.std),
        "source": loaded.meta.source,
        "assumed": list(loaded.meta.assumed),
        "warnings": list(loaded.meta.warnings),
        "epochs_trained": loaded.meta.epochs_trained,
        "device": str(loaded.device),
    }


def _cmd_info(args: argparse.Namespace) -> int:
    from sedensenet.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint, device=args.device)
    info = model_summary(loaded)
    if args.json:
        print(json_text(info))
        return 0
    classes = info["classes"]
    shown = ", ".join(classes[:10]) + (f" … ({len(classes)} in all)" if len(classes) > 10 else "")
    rows = [
        ("architecture", f"{info['arch']} (blocks {info['block_config']}, growth {info['growth_rate']}, "
                         f"{info['stem']} stem)"),
        ("SE placement", f"{info['se']} ({info['se_layers']} SE layers, hidden {info['se_hidden']}, "
                         f"bias {'on' if info['se_bias'] else 'off'})"),
        ("parameters", f"{info['parameters']:,} ({info['se_parameters']:,} in SE)"),
        ("input", f"{info['input_size']}×{info['input_size']}, mean {info['mean']}, std {info['std']}"),
        ("classes", shown),
        ("loaded as", f"{info['source']} on {info['device']}"),
        ("epochs trained", str(info["epochs_trained"])),
    ]
    rows[2:2] = [(f"  {s['site']}", f"{s['where']}: {s['SE modules']} × {s['channels']} ch, hidden {s['hidden']} "
                                   f"({s['width rule']}), bias {'on' if s['bias'] else 'off'}, {s['variant']}"
                  + ("" if s["blocks"] == "all" else f", blocks {s['blocks']}")) for s in info["se_sites"]]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        say(f"{key:<{width}}  {value}")
    for note in info["assumed"]:
        say(f"{'assumed':<{width}}  {note}")
    for note in info["warnings"]:
        say(f"{'warning':<{width}}  {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``sedensenet`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="sedensenet", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = sub.add_parser("info", help="describe a checkpoint (architecture, SE placement, classes, params)",
                          description="Describe a checkpoint: sedensenet file or raw DenseNet state_dict.")
    info.add_argument("checkpoint", metavar="CKPT", help="checkpoint file (.pt/.pth)")
    info.add_argument("--json", action="store_true", help="print one JSON document")
    info.add_argument("--device", default="cpu", help="device to load on (auto, cpu, cuda, mps; default cpu)")
    info.set_defaults(handler=_cmd_info)
    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    """Sub-command registrars from other modules (kept out of this file so each stays small)."""
    from sedensenet.cli.analysis import add_explain_parser, add_predict_parser
    from sedensenet.cli.report import add_report_parser
    from sedensenet.cli.training import REGISTRARS

    return [add_predict_parser, add_explain_parser, add_report_parser, *REGISTRARS]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sedensenet`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if is_top_level_help(argv):  # list the commands without importing them (torch is slow to import)
        top_level_parser().parse_args(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (SedensenetError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"sedensenet {args.command}: error: {terminal(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sedensenet {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"sedensenet {args.command}: error: out of memory; use smaller inputs or a smaller model",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not a user error: one line on screen, the traceback only when asked
        logging.getLogger("sedensenet").debug("".join(traceback.format_exception(exc)))
        print(f"sedensenet {args.command}: internal error ({type(exc).__name__}: {terminal(str(exc))[:300]}); "
              "please report it with the command line (set SEDENSENET_DEBUG=1 for the traceback)", file=sys.stderr)
        if _debug():
            traceback.print_exception(exc)
        return 70


def _debug() -> bool:
    import os

    return os.environ.get("SEDENSENET_DEBUG", "") not in ("", "0")


if __name__ == "__main__":
    raise SystemExit(main())
