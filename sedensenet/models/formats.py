"""What kind of file a checkpoint is, and the DenseNet state_dict inside the containers users bring.

Training frameworks wrap weights (timm ``train.py``: ``state_dict``/``state_dict_ema``/``args``; Lightning:
``state_dict`` + ``hyper_parameters``; ``{'model_state_dict', 'optimizer_state_dict'}``; ``{'model': …}``;
``{'ema': …}``), models wrap the DenseNet (``module.``, ``backbone.``, ``_orig_mod.`` …), and some formats hold
no weights by name at all (TorchScript, ONNX, TensorFlow checkpoints). This module finds the weights or says, in
one message, what to do instead.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PICKLE_MAGIC = b"\x80"  # pickle protocol ≥ 2 starts with PROTO; legacy (non-zip) torch.save files are such pickles
EMA_ENV = "SEDENSENET_WEIGHTS"  # "ema": prefer exponential-moving-average weights where a file has both
# Entries holding the model's weights, in the order they are tried (the EMA entries last: they are the choice only
# when asked for, or when they are all there is).
WEIGHT_ENTRIES = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "params")
EMA_ENTRIES = ("state_dict_ema", "model_ema", "ema", "ema_state_dict", "ema_model")
_STEMS = ("features.conv0.weight", "features.0.weight")
# Key signatures of DenseNet variants (and non-DenseNets) that cannot be loaded, named for the message.
UNSUPPORTED = (
    (re.compile(r"(^|\.)features\.conv0\.\d+\.weight$"), "the deep stem of timm densenet*d (features.conv0.0 …: "
     "three 3×3 convs); only the single-conv stem of torchvision/timm densenet121-201 is supported"),
    (re.compile(r"(^|\.)features\.stem\.\d+\."), "a multi-conv stem (features.stem.*); only the single-conv "
     "DenseNet stem is supported"),
    (re.compile(r"\.pool\.(filt|blur)"), "anti-aliased (blur) pooling of timm densenetblur*; "
     "plain average pooling only"),
    (re.compile(r"(^|\.)layer1\.0\.conv1\.weight$"), "a ResNet (layer1.0.conv1 …), not a DenseNet"),
    (re.compile(r"(^|\.)(blocks|stages)\.\d+\."), "a non-DenseNet backbone (blocks/stages: EfficientNet, "
     "ConvNeXt, …)"),
    (re.compile(r"(^|\.)encoder\.layer\.\d+\.attention\."), "a transformer, not a DenseNet"),
)


class FormatError(ValueError):
    """The file is a known format that holds no loadable weights; the message says what to do."""


def sniff(data: bytes, name: str = "") -> str:
    """``hdf5``, ``keras`` (zip with config.json), ``torchscript``, ``torch``, ``safetensors``, ``onnx``,
    ``tf-checkpoint`` or ``unknown`` (none of them: not a checkpoint file)."""
    lower = name.lower()
    if data.startswith(HDF5_MAGIC):
        return "hdf5"
    if data.startswith(b"PK"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "torch"  # a damaged zip: the PyTorch reader says it is truncated
        if "config.json" in names and "model.weights.h5" in names:
            return "keras"
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        if "saved_model.pb" in {n.rsplit("/", 1)[-1] for n in names}:
            return "tf-savedmodel"
        return "torch"
    if _is_safetensors(data):
        return "safetensors"
    head = data[:4096].lower()
    if lower.endswith(".onnx") or (data[:1] == b"\x08" and data[2:3] == b"\x12" and (b"onnx" in head
                                                                                  or b"pytorch" in head)):
        return "onnx"
    if data.startswith(b"model_checkpoint_path") or re.search(r"\.(index|data-\d{5}-of-\d{5})$", lower) or (
            lower.endswith(".pb") and b"saved_model" in data[:4096]):
        return "tf-checkpoint"
    if data.startswith(PICKLE_MAGIC):
        return "torch"
    return "unknown"


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (size,) = struct.unpack("<Q", data[:8])
    return 2 <= size <= min(len(data) - 8, 100 * 2**20) and data[8:9] == b"{"


def refuse(kind: str, name: str) -> FormatError:
    """The one message for a format that holds no weights this tool reads, with what to do instead."""
    messages = {
        "torchscript": f"{name} is a TorchScript archive (torch.jit.save): it holds code, which this tool never "
                       "runs. Where you trust the file, save its weights: torch.save(torch.jit.load(path)."
                       "state_dict(), 'weights.pt'), then load weights.pt.",
        "onnx": f"{name} is an ONNX model: not supported (its graph has no DenseNet layer names to map). Export "
                "the weights from the training code instead: torch.save(model.state_dict(), 'weights.pt') in "
                "PyTorch, or model.save('model.keras') in Keras.",
        "tf-checkpoint": f"{name} is a TensorFlow checkpoint (what Keras save_weights('x') writes without a .h5 "
                         "extension), not HDF5. Re-save in Keras with model.save_weights('weights.h5') "
                         "(tf.keras 2), model.save_weights('model.weights.h5') or model.save('model.keras') "
                         "(Keras 3), and load that file.",
        "tf-savedmodel": f"{name} is a TensorFlow SavedModel: not supported. In Keras, load it and save "
                         "model.save('model.keras') or model.save_weights('weights.h5'), then load that file.",
        "unknown": f"{name} is not a checkpoint file: it is not a PyTorch file (zip or pickle), safetensors, Keras "
                   "or HDF5. Pick the .pt/.pth/.safetensors/.keras/.h5 file the model was saved to.",
    }
    return FormatError(messages[kind])


def load_safetensors(data: bytes, name: str) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file (no code, no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise FormatError(f"{name} is not a readable .safetensors file ({exc}); copy or export it again") from None


def safe_globals() -> list[Any]:
    """Python classes allowed while unpickling: exactly ``argparse.Namespace`` (timm ``train.py``'s ``args``)."""
    return [argparse.Namespace]


def prefer_ema(choice: bool | None = None) -> bool:
    """Whether EMA weights are wanted: ``choice`` if given, else ``SEDENSENET_WEIGHTS=ema`` in the environment."""
    if choice is not None:
        return choice
    return os.environ.get(EMA_ENV, "").strip().lower() == "ema"


def _tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) for k in obj) and sum(
        isinstance(v, Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def unwrap(obj: Any, *, ema: bool = False, depth: int = 0) -> tuple[dict[str, Any] | None, list[str]]:
    """The state_dict inside a training-framework file and the path of entries used (e.g. ``['state_dict_ema']``).

    With ``ema`` the EMA entry is taken when there is one; without, the EMA entry is only a fallback.
    """
    if _tensor_dict(obj):
        return {k: v for k, v in obj.items() if isinstance(v, Tensor)}, []
    if not isinstance(obj, Mapping) or depth > 3:
        return None, []
    order = (*EMA_ENTRIES, *WEIGHT_ENTRIES) if ema else (*WEIGHT_ENTRIES, *EMA_ENTRIES)
    for key in order:
        if key in obj:
            state, path = unwrap(obj[key], ema=ema, depth=depth + 1)
            if state is not None:
                return state, [key, *path]
    return None, []


def to_float32(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Half-precision floating tensors (fp16/bf16) cast to float32 for exact CPU inference; notes what was cast."""
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values()
                     if isinstance(v, Tensor) and v.is_floating_point() and v.dtype != torch.float32})
    if not dtypes:
        return state, []
    out = {k: v.float() if isinstance(v, Tensor) and v.is_floating_point() else v for k, v in state.items()}
    return out, [f"{'/'.join(dtypes)} weights cast to float32"]


def unsupported_part(keys: list[str]) -> str | None:
    """Name of the unsupported part a state_dict has (e.g. a timm deep stem), or ``None``."""
    for pattern, what in UNSUPPORTED:
        if any(pattern.search(k) for k in keys):
            return what
    return None


def strip_wrappers(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Remove any prefix before the DenseNet (``module.``, ``backbone.``, ``model.densenet121.`` …).

    Keys outside the prefix that form one module are taken as the classifier when the DenseNet has none (a
    ``backbone`` + ``head`` wrapper). Raises ``FormatError`` naming what is not a DenseNet.
    """
    keys = list(state)
    stem = next((k for k in keys for s in _STEMS if k == s or k.endswith("." + s)), None)
    if stem is None:
        what = unsupported_part(keys)
        if what:
            raise FormatError(f"holds {what}")
        tops = sorted({".".join(k.split(".")[:2]) for k in keys})
        shown = ", ".join(tops[:6]) + (f" … ({len(tops)} in all)" if len(tops) > 6 else "")
        raise FormatError(f"has no DenseNet stem (features.conv0 or features.0); its modules are {shown}")
    prefix = stem[: -len(next(s for s in _STEMS if stem.endswith(s)))]
    notes = [f"DenseNet found under the prefix {prefix!r}"] if prefix.strip(".") not in ("", "module", "_orig_mod",
                                                                                       "model") else []
    inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    rest = {k: v for k, v in state.items() if not k.startswith(prefix)}
    has_head = any(k.startswith("classifier.") for k in inner)
    if rest and not has_head:
        groups = sorted({k.split(".")[0] for k in rest})
        if len(groups) == 1:
            name = groups[0]
            for k, v in rest.items():
                inner["classifier" + k[len(name):]] = v
            notes.append(f"classifier read from the wrapper's {name!r} module")
            rest = {}
    if rest:
        notes.append(f"ignored {len(rest)} entries outside the DenseNet ({', '.join(sorted(rest)[:3])} …)")
    return inner, notes
