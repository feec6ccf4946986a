"""The CLI's one convention: each command module exposes ``COMMANDS``, a tuple of ``register(sub)`` functions;
shared options (``--device``, ``--json``) are added by the helpers here; a configuration dataclass's flags come
from its fields' metadata (:func:`sedensenet.fields.option`), so its defaults are written once."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields
from typing import Any

from sedensenet.device import DEVICE_HELP

Register = Callable[[Any], None]


def add_device(parser: argparse.ArgumentParser | Any) -> None:
    """``--device`` with the same default (auto) and help for every command."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_json(parser: argparse.ArgumentParser | Any, what: str = "print one JSON document") -> None:
    """``--json``: one JSON document on stdout instead of text."""
    parser.add_argument("--json", action="store_true", help=what)


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_optional(text: str) -> Any:
        return None if text.lower() in ("none", "") else parse(text)
    parse_optional.__name__ = getattr(parse, "__name__", "value")  # argparse names the type in its errors
    return parse_optional


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of ``int``, ``str | None``, ``Optional[float]`` …"""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), len(args) < len(typing.get_args(hint))
    return hint, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *,
                            groups: Mapping[str, str] | None = None, default_group: str = "options") -> dict[str, Any]:
    """One flag per field of dataclass ``cls`` (dest = field name), from its type, default and metadata.

    Booleans become switches: ``--name`` for a False default, ``--no-name`` for a True one. ``X | None`` fields
    also accept ``none``. ``groups`` maps a metadata group to its title (order kept); other groups follow.
    Returns the argument groups by key, for flags that are not fields."""
    hints = typing.get_type_hints(cls)
    made: dict[str, Any] = {}
    for key, title in (groups or {}).items():
        made[key] = parser.add_argument_group(title)
    for f in fields(cls):
        meta = f.metadata
        group_key = meta.get("group") or default_group
        if group_key not in made:
            made[group_key] = parser.add_argument_group(group_key)
        _add_field(made[group_key], f, hints[f.name], meta)
    return made


def dataclass_flags(obj: Any, *, always: tuple[str, ...] = ()) -> list[str]:
    """The flags that :func:`add_dataclass_arguments` parses back into ``obj``: one per field whose value is not its
    default, and the fields named in ``always`` (a stored run's exact command line, without every default)."""
    out: list[str] = []
    for f in fields(obj):
        value, default = getattr(obj, f.name), (None if f.default is MISSING else f.default)
        flag = f.metadata.get("flag")
        if isinstance(value, bool):  # a switch says only that it differs from its default
            if value != default:
                out.append(flag or ("--no-" if default else "--") + f.name.replace("_", "-"))
        elif value != default or f.name in always:
            text = "none" if value is None else repr(value) if isinstance(value, float) else str(value)
            out += [flag or "--" + f.name.replace("_", "-"), text]
    return out


def _add_field(group: Any, f: Field[Any], hint: Any, meta: Mapping[str, Any]) -> None:
    default = None if f.default is MISSING else f.default
    help_text = (meta.get("help") or "").replace("%", "%%")
    flag = meta.get("flag")
    kind, nullable = _base_type(hint)
    if kind is bool:
        on = bool(default)
        name = flag or ("--no-" if on else "--") + f.name.replace("_", "-")
        group.add_argument(name, dest=f.name, action="store_false" if on else "store_true", default=on,
                           help=help_text or None)
        return
    name = flag or "--" + f.name.replace("_", "-")
    if default is not None and "default" not in help_text:
        help_text = f"{help_text} (default {default})".strip()
    parse = meta.get("parse") or (_optional(kind) if nullable else kind)
    if meta.get("parse"):
        parse = _usage_errors(meta["parse"])
    group.add_argument(name, dest=f.name, type=parse, default=default, choices=meta.get("choices"),
                       help=help_text or None)


def _usage_errors(parse: Any) -> Any:
    """``parse`` with its ValueError reported by argparse as a usage error (the message kept)."""
    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    wrapped.__name__ = getattr(parse, "__name__", "value")
    return wrapped
