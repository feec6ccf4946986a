"""Dataclass fields that describe their own command-line flag, so a configuration's defaults and help are
written once (the CLI generates its flags from them: :func:`sedensenet.cli.options.add_dataclass_arguments`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any


def option(default: Any, help: str, *, group: str, flag: str | None = None,
           choices: tuple[str, ...] | None = None, parse: Callable[[str], Any] | None = None) -> Any:
    """A field with ``default`` whose flag has ``help`` text and sits in argument ``group``; ``flag`` overrides the
    name (default ``--field-name``, or ``--no-field-name`` for a field that defaults to True); ``parse`` turns
    the flag's text into the value (a ValueError becomes a usage error naming the flag)."""
    return field(default=default, metadata={"help": help, "group": group, "flag": flag, "choices": choices,
                                            "parse": parse})
