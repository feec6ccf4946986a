"""Typed checkpoint metadata: what a model needs to be used (classes, input size, normalisation) and what it
tells about itself (training history, arguments, data), validated by schema on load.

A checkpoint is an upload: its metadata can be any pickle-safe structure (a string where a list belongs, a
tensor, a "DAG bomb" of shared nested lists whose naive traversal never ends). :meth:`CheckpointMeta.from_dict`
never walks deeper than the schema and never further than its length bounds. Policy:

- **refused** (:class:`~sedensenet.errors.CheckpointError`) — ``classes``, ``input_size``, ``mean``, ``std``:
  without them the model's answers would be wrong;
- **dropped with a warning** (listed in :attr:`CheckpointMeta.warnings`) — ``history``, ``train_args``,
  ``dataset`` and other entries that are not plain JSON-like data (numbers, strings, lists, dicts) within the
  size bounds: the model still works, only a description is lost. Plain extra entries (an evaluation report,
  stored class statistics, a citation) are kept in :attr:`CheckpointMeta.extra`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from torch import Tensor

from sedensenet.errors import CheckpointError
from sedensenet.models.heads import ACTIVATIONS as HEAD_ACTIVATIONS
from sedensenet.text import clean_text

MAX_CLASSES = 100_000
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 10_000
MAX_HISTORY_ROWS = 10_000
MAX_ROW_KEYS = 64
MAX_ARGS = 256
MAX_LIST_ITEMS = 64
MAX_EXTRA = 64
MAX_EXTRA_NODES = 1_000_000  # all extra entries together: a shared-reference "DAG bomb" stops here
MAX_DEPTH = 8
MAX_RESUME_NODES = 200_000
MAX_HEAD_NODES = 1_000  # a classifier head is a handful of layers
RESIZE_MODES = ("crop", "letterbox")  # how a picture becomes the model's square input
HISTORY_KEYS = ("epoch",)  # what the history views need in every row (the rest is plotted where present)

Scalar = str | int | float | bool | None


class MetaProblem(ValueError):
    """One schema violation; the message names the entry."""


def _text(value: Any, where: str, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise MetaProblem(f"{where} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise MetaProblem(f"{where} is {len(value):,} characters long (at most {limit:,})")
    return value


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetaProblem(f"{where} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise MetaProblem(f"{where} is {value}, not a finite number")
    return value


def _sequence(value: Any, where: str, limit: int) -> Sequence[Any]:
    if isinstance(value, Tensor) and value.dim() == 1:
        value = value.tolist() if value.numel() <= limit else value
    if not isinstance(value, (list, tuple)):
        raise MetaProblem(f"{where} must be a list, not {type(value).__name__}")
    if len(value) > limit:
        raise MetaProblem(f"{where} has {len(value):,} entries (at most {limit:,})")
    return value


def _mapping(value: Any, where: str, limit: int) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise MetaProblem(f"{where} must be a dict, not {type(value).__name__}")
    if len(value) > limit:
        raise MetaProblem(f"{where} has {len(value):,} entries (at most {limit:,})")
    return value


def _scalar(value: Any, where: str) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, where)
    return _number(value, where)


def _arg(value: Any, where: str) -> Scalar | list[Scalar]:
    if isinstance(value, (list, tuple)):
        return [_scalar(v, f"{where}[{i}]") for i, v in enumerate(_sequence(value, where, MAX_LIST_ITEMS))]
    return _scalar(value, where)


def parse_classes(value: Any, num_classes: int) -> tuple[list[str], list[str]]:
    """Class names (one per output, short strings); control characters made visible, with a warning."""
    seq = _sequence(value, "'classes'", MAX_CLASSES)
    names = [_text(c, f"'classes'[{i}]", MAX_NAME_CHARS) for i, c in enumerate(seq)]
    if len(names) != num_classes:
        raise MetaProblem(f"metadata lists {len(names)} classes but the classifier has {num_classes} outputs; "
                          "fix 'classes' in the metadata")
    cleaned = [clean_text(n) for n in names]
    notes = ["class names held control characters (shown escaped)"] if cleaned != names else []
    return cleaned, notes


def parse_history(value: Any) -> list[dict[str, float | int]]:
    rows = []
    for i, row in enumerate(_sequence(value, "'history'", MAX_HISTORY_ROWS)):
        row = _mapping(row, f"'history'[{i}]", MAX_ROW_KEYS)
        clean = {_text(k, f"a key of 'history'[{i}]", 64): _number(v, f"'history'[{i}][{k!r}]")
                 for k, v in row.items()}
        missing = [k for k in HISTORY_KEYS if k not in clean]
        if missing:
            raise MetaProblem(f"'history'[{i}] lacks {', '.join(missing)}")
        rows.append(clean)
    return rows


def parse_train_args(value: Any) -> dict[str, Scalar | list[Scalar]]:
    args = _mapping(value, "'train_args'", MAX_ARGS)
    return {_text(k, "a key of 'train_args'", 64): _arg(v, f"'train_args'[{k!r}]") for k, v in args.items()}


def parse_plain(value: Any, where: str, budget: list[int], depth: int = 0) -> Any:
    """Plain JSON-like data (finite numbers, strings, lists, dicts with string keys), copied; tuples and 1-d
    tensors become lists. ``budget`` counts nodes across calls, ``depth`` is bounded: never an unbounded walk."""
    budget[0] -= 1
    if budget[0] < 0:
        raise MetaProblem(f"{where}: metadata holds more than {MAX_EXTRA_NODES:,} values in all")
    if depth > MAX_DEPTH:
        raise MetaProblem(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Tensor) and value.dim() <= 1 and value.numel() <= MAX_LIST_ITEMS * 1000:
        value = value.tolist()
    if isinstance(value, Mapping):
        return {_text(k, f"a key of {where}", 200): parse_plain(v, f"{where}[{k!r}]", budget, depth + 1)
                for k, v in _mapping(value, where, 100_000).items()}
    if isinstance(value, (list, tuple)):
        return [parse_plain(v, f"{where}[{i}]", budget, depth + 1)
                for i, v in enumerate(_sequence(value, where, 1_000_000))]
    return _scalar(value, where)


def check_resume(value: Any) -> dict[str, Any]:
    """Optimiser state for ``--resume``: nested dicts/lists of numbers and tensors, at most
    :data:`MAX_RESUME_NODES` visits (a shared-reference "DAG bomb" hits the bound, not the memory)."""
    budget = [MAX_RESUME_NODES]

    def walk(v: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > 8:
            raise MetaProblem("'resume' is nested too deeply or too large for an optimiser state")
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(k, depth + 1)
                walk(x, depth + 1)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, depth + 1)
        elif not (v is None or isinstance(v, (bool, int, float, str, Tensor))):
            raise MetaProblem(f"'resume' holds a {type(v).__name__}")

    walk(_mapping(value, "'resume'", 16), 0)
    return dict(value)


@dataclass(frozen=True)
class CheckpointMeta:
    """Validated metadata of a loaded checkpoint (see the module docstring for what is refused or dropped)."""

    classes: list[str]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    history: list[dict[str, float | int]] = field(default_factory=list)
    train_args: dict[str, Scalar | list[Scalar]] = field(default_factory=dict)
    dataset: str | None = None
    best_epoch: int | None = None
    format: str = "sedensenet"
    format_version: int = 1
    source: str = "sedensenet"
    assumed: list[str] = field(default_factory=list)
    resize: str = "crop"
    family: str = ""
    head_activation: str = "softmax"
    head: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_trained(self) -> int:
        return len(self.history)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (lists, strings, finite numbers); ``from_dict(as_dict())`` round-trips."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(self.extra)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        out["history"] = [dict(r) for r in self.history]
        out["train_args"] = {k: list(v) if isinstance(v, list) else v for k, v in self.train_args.items()}
        return out

    def stored(self) -> dict[str, Any]:
        """What :func:`~sedensenet.models.checkpoint.save_checkpoint` writes (load-time notes left out)."""
        out = self.as_dict()
        for key in ("format", "format_version", "source", "assumed", "warnings", "family"):
            out.pop(key)
        if out["head"] is None:
            out.pop("head")
        if out["head_activation"] == "softmax":
            out.pop("head_activation")
        if out["dataset"] is None:
            out.pop("dataset")
        if out["resize"] == "crop":
            out.pop("resize")
        if out["best_epoch"] is None:
            out.pop("best_epoch")
        return out

    @classmethod
    def from_dict(cls, raw: Any, *, num_classes: int, in_channels: int = 3, strict: bool = False,
                  **loaded: Any) -> CheckpointMeta:
        """Validate ``raw`` (the file's metadata dict). Essential fields that are wrong raise
        :class:`CheckpointError`; descriptive ones are dropped with a warning, or raise too when ``strict``
        (saving). ``loaded`` sets the load-time fields (format, source, assumed)."""
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"metadata must be a dict, not {type(raw).__name__}")
        warnings: list[str] = []
        try:
            classes, notes = parse_classes(raw.get("classes"), num_classes)
            size = raw.get("input_size")
            if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096:
                raise MetaProblem(f"metadata 'input_size' must be an integer in 8…4096, got {_short(size)}")
            norm = {}
            for key in ("mean", "std"):
                seq = _sequence(raw.get(key), f"'{key}'", 16)
                if len(seq) != in_channels:
                    raise MetaProblem(f"metadata '{key}' must be {in_channels} numbers, got {_short(seq)}")
                norm[key] = tuple(float(_number(v, f"'{key}'[{i}]")) for i, v in enumerate(seq))
            if any(s <= 0 for s in norm["std"]):
                raise MetaProblem(f"metadata 'std' must be positive, got {list(norm['std'])}")
            resize = raw.get("resize", "crop")
            if resize not in RESIZE_MODES:
                raise MetaProblem(f"metadata 'resize' must be one of {', '.join(RESIZE_MODES)}, got {_short(resize)}")
            activation = raw.get("head_activation", "softmax")
            if activation not in HEAD_ACTIVATIONS:
                raise MetaProblem(f"metadata 'head_activation' must be one of {', '.join(HEAD_ACTIVATIONS)}, "
                                  f"got {_short(activation)}")
            head = None
            if raw.get("head") is not None:
                head = parse_plain(_mapping(raw["head"], "'head'", 8), "'head'", [MAX_HEAD_NODES])
        except MetaProblem as exc:
            raise CheckpointError(f"{exc}; the model cannot be used correctly without it") from None
        warnings += notes
        parsed: dict[str, Any] = {}
        for key, parse in (("history", parse_history), ("train_args", parse_train_args),
                           ("dataset", lambda v: _text(v, "'dataset'")), ("best_epoch", _epoch)):
            if raw.get(key) is None:
                continue
            try:
                parsed[key] = parse(raw[key])
            except MetaProblem as exc:
                if strict:
                    raise CheckpointError(f"metadata {exc}") from None
                warnings.append(f"metadata {key!r} ignored: {exc}")
        known = {f.name for f in fields(cls)} | {"resume", "config"}
        extra: dict[str, Any] = {}
        budget = [MAX_EXTRA_NODES]
        for key in list(raw)[:MAX_EXTRA + len(known)]:
            if key in known:
                continue
            try:
                extra[_text(key, "a metadata key", 64)] = parse_plain(raw[key], f"metadata {key!r}", budget)
            except MetaProblem as exc:
                if strict:
                    raise CheckpointError(f"{exc}; only plain numbers, strings, lists and dicts can be stored") \
                        from None
                warnings.append(f"{exc}: ignored")
        if len(raw) > MAX_EXTRA + len(known):
            warnings.append(f"metadata has {len(raw):,} keys; only the known ones and {MAX_EXTRA} others were read")
        if "family" not in loaded and isinstance(raw.get("family"), str):
            loaded["family"] = clean_text(raw["family"][:MAX_NAME_CHARS])
        return cls(classes=classes, input_size=size, mean=norm["mean"], std=norm["std"], resize=resize,
                   head_activation=activation, head=head, warnings=warnings, extra=extra, **parsed, **loaded)


def _epoch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MetaProblem(f"'best_epoch' must be an epoch number, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, (list, tuple, Mapping, Tensor)) else f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "…"
