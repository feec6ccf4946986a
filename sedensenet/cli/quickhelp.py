"""``sedensenet --help`` without importing the commands (their modules pull in torch, torchvision and Captum,
5–9 s on a small machine). The table below must list every command with its one-line help; a test compares it
with the full parser, so a new command cannot be forgotten here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "info": "describe a checkpoint (architecture, SE placement, classes, params)",
    "predict": "top-k predictions for one or more images",
    "explain": "predictions, every SE record and an attribution map for one image",
    "report": "one image's analysis as a self-contained HTML report",
    "convert": "convert any loadable checkpoint to a sedensenet checkpoint",
    "stats": "class-wise mean/std of every SE layer's excitation over a dataset (SENet §7)",
    "train": "train an SE-DenseNet (and with --pair its baseline)",
    "evaluate": "accuracy, per-class accuracy and confusion matrix on a dataset",
    "curves": "train/val accuracy and loss curves of one or more checkpoints",
}
PROG = "sedensenet"
DESCRIPTION = "SE-DenseNet models and tools that make channel attention visible."
DEBUG_HELP = "show the full traceback of an unexpected error"
EPILOG = "Every command has its own --help, e.g. 'sedensenet explain --help'."


def top_level_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command listed (not populated): enough to print ``--help``."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text)
    return parser


def is_top_level_help(argv: Sequence[str]) -> bool:
    """True for ``sedensenet``, ``sedensenet -h`` and ``sedensenet --help`` (no command named)."""
    return len(argv) == 0 or (len(argv) == 1 and argv[0] in ("-h", "--help"))
