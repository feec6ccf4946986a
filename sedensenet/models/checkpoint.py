"""Safe checkpoints: one file with weights + metadata, and loaders for the state_dicts users already have.

Everything is read with ``torch.load(weights_only=True)``: a file that needs arbitrary Python objects
(a whole pickled model, a hostile pickle) is refused before any of its code can run.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor, nn

from sedensenet.device import resolve_device
from sedensenet.errors import CheckpointError
from sedensenet.models import formats
from sedensenet.models.densenet import ModelConfig, SEDenseNet, build_from_config
from sedensenet.models.heads import HeadSpec, describe_head, infer_head, install_head
from sedensenet.models.keras import KerasFormatError, read_keras
from sedensenet.models.keys import infer_config, normalise_keys
from sedensenet.models.limits import check_archive, check_config_shapes, check_model_cost, check_tensors
from sedensenet.models.metadata import CheckpointMeta, MetaProblem, check_resume

FORMAT = "sedensenet"
FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: densenet161 is ~115 MB; anything far larger is not one of ours
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
RESAVE_HINT = (
    "Re-save only the weights where the model was trained: "
    "torch.save(model.state_dict(), 'weights.pt'), or use sedensenet.save_checkpoint(path, model, meta)."
)

Source = str | os.PathLike[str] | bytes | bytearray | IO[bytes]


__all__ = ["CheckpointError", "CheckpointMeta", "LoadedModel", "load_checkpoint", "save_checkpoint"]


@dataclass
class LoadedModel:
    """A model ready for inference (eval mode, on ``device``), its validated metadata and, for ``--resume``,
    the optimiser state stored with it."""

    model: SEDenseNet
    meta: CheckpointMeta
    device: torch.device
    resume: dict[str, Any] | None = None
    config: ModelConfig = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.model.config

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def input_size(self) -> int:
        return self.meta.input_size


def _check_safe_value(value: Any, where: str) -> None:
    """Metadata must be plain data (what ``weights_only`` loading accepts): raise naming the bad entry."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_safe_value(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"metadata key {k!r} at {where} must be a string or an integer")
            _check_safe_value(v, f"{where}.{k}")
        return
    raise TypeError(f"metadata {where} is a {type(value).__name__}; only numbers, strings, lists, dicts "
                    "and tensors can be stored safely")


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively, so metadata round-trips identically."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def default_meta(config: ModelConfig) -> tuple[dict[str, Any], list[str]]:
    """Stated defaults for metadata a raw state_dict lacks, and the list of what was assumed."""
    small = config.stem == "small"
    meta: dict[str, Any] = {
        "input_size": 32 if small else 224,
        "mean": list(CIFAR_MEAN if small else IMAGENET_MEAN),
        "std": list(CIFAR_STD if small else IMAGENET_STD),
        "history": [],
    }
    assumed = [
        f"input size {meta['input_size']}×{meta['input_size']} ({'small-input' if small else 'ImageNet'} stem)",
        f"normalisation mean/std of {'CIFAR-10' if small else 'ImageNet'}",
    ]
    if config.num_classes == 1000 and not small:
        from torchvision.models import DenseNet121_Weights

        meta["classes"] = list(DenseNet121_Weights.IMAGENET1K_V1.meta["categories"])
        assumed.append("ImageNet-1k class names (1000 outputs)")
    else:
        meta["classes"] = [f"class_{i}" for i in range(config.num_classes)]
        assumed.append(f"generic class names class_0…class_{config.num_classes - 1}")
    return meta, assumed


def _meta(raw: Any, config: ModelConfig, *, strict: bool = False, **loaded: Any) -> CheckpointMeta:
    return CheckpointMeta.from_dict(raw, num_classes=config.num_classes, in_channels=config.in_channels,
                                    strict=strict, **loaded)


def save_checkpoint(path: str | os.PathLike[str], model: SEDenseNet,
                    meta: Mapping[str, Any] | CheckpointMeta | None = None) -> Path:
    """Write weights + config + metadata to ``path`` atomically (temp file in the same folder, then rename).

    Missing metadata (classes, input size, mean/std) gets the same defaults loading would assume.
    """
    model = getattr(model, "module", model)  # DataParallel / DDP wrappers
    if not isinstance(model, SEDenseNet):
        raise TypeError(f"save_checkpoint expects an SEDenseNet, got {type(model).__name__}")
    config = model.config
    full, _ = default_meta(config)
    full.update(_plain(meta.stored() if isinstance(meta, CheckpointMeta) else dict(meta or {})))
    full.pop("assumed", None)
    head = describe_head(model.classifier, getattr(model, "head_activation", "softmax"))
    full.pop("head", None)
    full["head_activation"] = head.activation if head is not None else "softmax"
    if head is not None:
        full["head"] = head.as_dict()
    _check_safe_value(full, "meta")
    stored = _meta(full, config, strict=True).stored()
    if full.get("resume") is not None:
        stored["resume"] = full["resume"]
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "meta": stored,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary, shareable file
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_bounded(source: Source, max_bytes: int) -> tuple[bytes, str]:
    """Bytes of ``source`` (path, bytes or binary file) and a name for messages; refuse over ``max_bytes``."""
    limit = f"{max_bytes / 2**20:.0f} MiB"
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "uploaded file"
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source)
        name = str(p)
        if p.is_dir() and (p / "saved_model.pb").is_file():
            raise CheckpointError(str(formats.refuse("tf-savedmodel", name)))
        if not p.is_file():
            raise CheckpointError(f"checkpoint {name!r} does not exist or is not a file")
        size = p.stat().st_size
        if size > max_bytes:
            raise CheckpointError(f"{name} is {size / 2**20:.0f} MiB, over the {limit} limit for a checkpoint; "
                                  "is it really a DenseNet checkpoint? Raise max_bytes if you trust it.")
        data = p.read_bytes()
    else:
        name = getattr(source, "name", "uploaded file")
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CheckpointError(f"{name} is over the {limit} limit for a checkpoint; "
                              "is it really a DenseNet checkpoint? Raise max_bytes if you trust it.")
    if not data:
        raise CheckpointError(f"{name} is empty: not a checkpoint")
    return data, name


def _safe_load(data: bytes, name: str) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into an actionable message."""
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(formats.safe_globals()):
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(
                f"{name} contains pickled Python objects ({found.group(1)}; e.g. a whole model saved with "
                f"torch.save(model)), which could run code when loaded, so it was refused. {RESAVE_HINT}") from None
        raise CheckpointError(f"{name} is not a PyTorch checkpoint (unreadable pickle data). "
                              f"Pick a .pt/.pth file saved with torch.save. {RESAVE_HINT}") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as exc:
        text = str(exc).lower()
        if "zip" in text or "central directory" in text or "eof" in text or isinstance(exc, EOFError):
            raise CheckpointError(f"{name} is truncated or corrupt (could not read it as a PyTorch file); "
                                  "copy or download it again.") from None
        raise CheckpointError(f"{name} could not be read as a PyTorch checkpoint: {exc}") from None


def _strict_load(model: nn.Module, state: dict[str, Tensor], name: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or mis-shaped key is an error naming the keys."""
    expected = model.state_dict()
    bad_type = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad_type:
        raise CheckpointError(f"{name}: entries are not tensors: {_names(bad_type)}")
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if shapes:
        problems.append(f"mis-shaped: {_names(shapes)}")
    if problems:
        raise CheckpointError(f"{name} does not match the architecture {model.config.arch!r} "  # type: ignore[union-attr]
                              f"(se={model.config.se!r}): " + "; ".join(problems))  # type: ignore[union-attr]
    full = {k: state.get(k, expected[k]) for k in expected}
    model.load_state_dict(full, strict=True)


def _names(items: list[str], limit: int = 8) -> str:
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def load_checkpoint(source: Source, *, device: str | torch.device = "auto",
                    max_bytes: int = DEFAULT_MAX_BYTES, ema: bool | None = None) -> LoadedModel:
    """Load a sedensenet checkpoint or the DenseNet weights in a file users already have.

    Reads raw ``state_dict`` files (torchvision, timm or course-seed naming; any wrapper prefix; Linear, Dropout,
    Sigmoid and MLP heads), training-framework files (timm ``train.py``, Lightning, ``model_state_dict`` …),
    ``.safetensors`` and Keras ``.keras`` / ``.weights.h5`` / ``.h5`` files. The architecture is inferred and
    metadata defaults are stated in ``meta.assumed``; ``meta.family`` names what the file was. ``ema``
    picks EMA weights where a file has both (default: ``SEDENSENET_WEIGHTS=ema`` in the environment).
    Returns the model in eval mode on ``device`` (``"auto"``: CUDA, MPS, then CPU).
    Raises :class:`CheckpointError` with an actionable message for anything it cannot load safely.
    """
    data, name = _read_bounded(source, max_bytes)
    kind = formats.sniff(data, name)
    dev = resolve_device(device)
    resume = None
    if kind in ("hdf5", "keras"):
        model, meta = _from_keras(data, name, kind)
    elif kind in ("torchscript", "onnx", "tf-checkpoint", "tf-savedmodel", "unknown"):
        raise CheckpointError(str(formats.refuse(kind, name)))
    elif kind == "safetensors":
        try:
            tensors = formats.load_safetensors(data, name)
        except formats.FormatError as exc:
            raise CheckpointError(str(exc)) from None
        model, meta = _from_state_dict(tensors, name, container="safetensors")
    else:
        check_archive(data, name, max_uncompressed=max(max_bytes, len(data)))
        obj = _safe_load(data, name)
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            model, meta = _from_own_format(obj, name)
            resume = _resume(obj, meta)
        else:
            model, meta = _from_state_dict(obj, name, ema=formats.prefer_ema(ema))
    model.eval().to(dev)
    return LoadedModel(model=model, meta=meta, device=dev, resume=resume)


def _resume(obj: dict[str, Any], meta: CheckpointMeta) -> dict[str, Any] | None:
    """The optimiser state stored for ``--resume``, bounded; a malformed one is dropped with a warning."""
    raw = obj.get("meta")
    value = raw.get("resume") if isinstance(raw, dict) else None
    if value is None:
        return None
    try:
        return check_resume(value)
    except MetaProblem as exc:
        meta.warnings.append(f"optimiser state ignored: {exc}")
        return None


def _build(config: ModelConfig) -> SEDenseNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_from_config(config)


def _from_own_format(obj: dict[str, Any], name: str) -> tuple[SEDenseNet, dict[str, Any]]:
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{name} has format version {version!r}; this sedensenet reads ≤ {FORMAT_VERSION}. "
                              "Upgrade sedensenet.")
    try:
        config = ModelConfig.from_dict(dict(obj["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{name} has an invalid model config: {exc}") from None
    try:
        meta = _meta(obj.get("meta") or {}, config, format=FORMAT, format_version=version, source="sedensenet")
    except CheckpointError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{name} has no weights ('state_dict' missing)")
    check_tensors(state, name)
    check_config_shapes(config, state, name)
    check_model_cost(config, meta.input_size, name)
    model = _build(config)
    try:
        head = HeadSpec.from_dict(meta.head) if meta.head is not None else None
        if head is None and meta.head_activation != "softmax":
            head = HeadSpec([], meta.head_activation)
        install_head(model, head)
    except ValueError as exc:
        raise CheckpointError(f"{name} has an invalid classifier head in its metadata: {exc}") from None
    _strict_load(model, state, name)
    if not meta.family:
        source = meta.extra.get("converted_from")
        meta = replace(meta, family="sedensenet checkpoint" + (f" (converted from {source})" if source else ""))
    return model, meta


def _container(obj: Any, path: list[str]) -> str:
    """Name of the training framework a wrapper dict comes from, read from its entries."""
    entries = set(obj) if isinstance(obj, dict) else set()
    if not path:
        return "state_dict"
    if "pytorch-lightning_version" in entries or "hyper_parameters" in entries:
        return f"PyTorch Lightning checkpoint ({path[0]!r})"
    if path[0] in ("state_dict", "state_dict_ema") and ("args" in entries or "state_dict_ema" in entries):
        return f"timm train.py checkpoint ({path[0]!r})"
    return "dict with " + " → ".join(repr(p) for p in path)


def _from_state_dict(obj: Any, name: str, *, ema: bool = False, container: str | None = None,
                     extra_notes: list[str] | None = None,
                     loaded: dict[str, Any] | None = None) -> tuple[SEDenseNet, CheckpointMeta]:
    state, path = formats.unwrap(obj, ema=ema)
    if state is None:
        entries = f" with no DenseNet weights (entries: {_names([str(k) for k in obj])})" if isinstance(
            obj, dict) else ""
        raise CheckpointError(f"{name} holds a {type(obj).__name__}{entries}, not a state_dict or a sedensenet "
                              f"checkpoint. {RESAVE_HINT}")
    notes = list(extra_notes or [])
    family = container or _container(obj, path)
    if path:
        notes.append(f"weights read from the {' → '.join(path)} entry")
        others = [k for k in formats.EMA_ENTRIES if isinstance(obj, dict) and k in obj and k not in path]
        if others and not ema:
            notes.append(f"the file also has EMA weights ({others[0]!r}); set {formats.EMA_ENV}=ema "
                         "(or convert --ema) to use them")
    state, cast = formats.to_float32(state)
    notes += cast
    try:
        state, wrap_notes = formats.strip_wrappers(state)
    except formats.FormatError as exc:
        raise CheckpointError(f"{name} is not a DenseNet this tool can load: it {exc}") from None
    notes += wrap_notes
    state, origin = normalise_keys(state)
    check_tensors(state, name)
    unsupported = formats.unsupported_part(list(state))
    if unsupported:
        raise CheckpointError(f"{name} is not a DenseNet this tool can load: it holds {unsupported}")
    try:
        head, head_notes = infer_head(state)
    except ValueError as exc:
        raise CheckpointError(f"{name} has a classifier head this tool cannot rebuild: {exc}") from None
    probe = state
    if head is not None and head.layers:
        last = max(i for i, x in enumerate(head.layers) if x["type"] == "linear")
        probe = {**state, "classifier.weight": state[f"classifier.{last}.weight"]}
    try:
        config, inferred = infer_config(probe)
    except ValueError as exc:
        raise CheckpointError(f"{name} is not a DenseNet state_dict this tool understands: {exc}") from None
    defaults, assumed = default_meta(config)
    loaded = dict(loaded or {})
    size = loaded.pop("input_size", None)
    if size:
        defaults["input_size"] = size
        assumed = [a for a in assumed if not a.startswith("input size")]
    check_model_cost(config, defaults["input_size"], name)
    model = _build(config)
    try:
        install_head(model, head)
    except ValueError as exc:
        raise CheckpointError(f"{name} has a classifier head that does not fit the DenseNet: {exc}") from None
    _strict_load(model, state, name)
    if head is not None:
        defaults["head"] = head.as_dict()
    defaults["head_activation"] = model.head_activation
    loaded.setdefault("source", origin)
    loaded.setdefault("family", f"{family}, {origin} keys")
    meta = _meta(defaults, config, format="state_dict", format_version=0,
                 assumed=assumed + notes + inferred + head_notes, **loaded)
    return model, meta


def _from_keras(data: bytes, name: str, kind: str) -> tuple[SEDenseNet, CheckpointMeta]:
    """A Keras DenseNet mapped onto torchvision keys, then loaded like any state_dict."""
    try:
        weights = read_keras(data, name, kind)
    except KerasFormatError as exc:
        raise CheckpointError(f"{name}: this Keras file {exc}") from None
    except (KeyError, ValueError, TypeError, IndexError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{name}: this Keras file is damaged or not a keras.applications-style DenseNet "
                              f"({type(exc).__name__}: {exc}); save it again with model.save('model.keras')") from None
    model, meta = _from_state_dict(weights.state, name, container=weights.family, extra_notes=weights.notes,
                                   loaded=dict(family=weights.family, source="keras", input_size=weights.input_size))
    install_head(model, HeadSpec([], weights.head_activation) if weights.head_activation != "softmax" else None)
    return model, replace(meta, head_activation=model.head_activation)
