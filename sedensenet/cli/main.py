"""Command line: ``sedensenet COMMAND …`` (every command has ``--help``; ``--json`` prints one JSON document).

Convention: each module of this package that defines commands exposes ``COMMANDS``, a tuple of
``register(subparsers)`` functions; a handler returns the exit status. Errors the user can fix
(:class:`~sedensenet.errors.SedensenetError`) print one line and exit 2; anything else is a bug: its traceback goes
to a log file (or the terminal with ``--debug``) and the user sees one line pointing at it, exit 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from sedensenet.cli.output import terminal
from sedensenet.cli.quickhelp import DEBUG_HELP, DESCRIPTION, EPILOG, is_top_level_help, top_level_parser
from sedensenet.errors import SedensenetError

Handler = Callable[[argparse.Namespace], int]
LOG_NAME = "sedensenet-error.log"


def build_parser() -> argparse.ArgumentParser:
    """The ``sedensenet`` argument parser with every sub-command."""
    from sedensenet.cli import analysis, convert, info, report, stats, training

    parser = argparse.ArgumentParser(prog="sedensenet", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (info, analysis, report, convert, stats, training):
        for register in module.COMMANDS:
            register(sub)
    return parser


def error_log() -> Path:
    """Where unexpected errors' tracebacks are written."""
    return Path(tempfile.gettempdir()) / LOG_NAME


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sedensenet`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if is_top_level_help(argv):  # list the commands without importing them (torch is slow to import)
        top_level_parser().parse_args(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    name = f"sedensenet {args.command}"
    try:
        return handler(args)
    except SedensenetError as exc:
        print(f"{name}: error: {terminal(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{name}: error: out of memory; use smaller inputs or a smaller model", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not a user error: keep the traceback, show one line
        if args.debug:
            raise
        log = error_log()
        try:
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"$ {' '.join(sys.argv)}\n{''.join(traceback.format_exception(exc))}\n")
            where = f"the traceback is in {log}"
        except OSError:
            where = "rerun with --debug for the traceback"
        print(f"{name}: unexpected error ({type(exc).__name__}: {terminal(str(exc))[:300]}); {where} "
              f"(or rerun as 'sedensenet --debug {args.command} …')", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
