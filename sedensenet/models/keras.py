"""Keras DenseNets (keras.applications naming, with or without the course seed's SE) read with h5py alone.

Three files carry the weights: Keras 3 ``.keras`` (a zip of ``config.json`` + ``model.weights.h5``), Keras 3
``.weights.h5`` (``layers/<class>_<n>/vars/<i>``) and legacy ``.h5`` (``model_weights/<layer>/…`` with
``layer_names``/``weight_names`` attributes; tf.keras 2 names layers ``conv1/conv``, Keras 3 ``conv1_conv``).
Weights are matched by layer name; the seed's auto-named SE ``Dense`` layers by shape. The result is a
torchvision-named state_dict, so the one key-inference path builds the model:

- conv kernels HWIO → OIHW, Dense kernels (in, out) → (out, in);
- BatchNorm epsilon (1.001e-5 in keras.applications) folded into ``running_var`` for torch's 1e-5:
  ``(x - m) / sqrt(v + eps_k)`` = ``(x - m) / sqrt((v + eps_k - 1e-5) + 1e-5)`` (rounded once, in float64);
- ``ZeroPadding2D(3)`` + valid 7×7/2 conv = torch ``padding=3``; ``ZeroPadding2D(1)`` + ``MaxPool(3, 2)`` =
  torch's -inf padding because its input is post-ReLU (≥ 0).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

MAX_ARRAY_BYTES = 1 << 30  # one weight array of a DenseNet is a few MB; a compressed dataset may claim far more
TORCH_BN_EPS = 1e-5
KERAS_BN_EPS = 1.001e-5
_STEM = re.compile(r"^conv1[/_](conv|bn)$")
_LAYER = re.compile(r"^conv(\d+)_block(\d+)_([012])_(conv|bn)$")
_TRANSITION = re.compile(r"^pool(\d+)_(bn|conv)$")
_BN_VARS = ("gamma", "beta", "moving_mean", "moving_variance")


class KerasFormatError(ValueError):
    """A Keras file this reader cannot map; the message names the part."""


@dataclass
class KerasLayer:
    """One weighted layer: its name, kind (conv, bn, dense) and arrays by Keras variable name."""

    name: str
    kind: str
    arrays: dict[str, np.ndarray]
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class KerasWeights:
    """A torchvision-named state_dict plus what the Keras file says about using it."""

    state: dict[str, Tensor]
    family: str
    head_activation: str = "softmax"
    input_size: int | None = None
    notes: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read(dataset: Any) -> np.ndarray:
    """A numeric dataset's values, refusing (before allocating) one that claims an absurd size or is not numbers
    (an uploaded HDF5 file can declare a huge compressed dataset)."""
    import h5py

    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiu":
        raise KerasFormatError(f"has an entry {dataset.name!r} that is not a numeric weight array")
    if dataset.size * dataset.dtype.itemsize > MAX_ARRAY_BYTES:
        mib = dataset.size * dataset.dtype.itemsize / 2**20
        raise KerasFormatError(f"has an entry {dataset.name!r} that claims {mib:.0f} MiB: not a DenseNet weight")
    return np.asarray(dataset[()])


def _kind(arrays: dict[str, np.ndarray]) -> str | None:
    if "gamma" in arrays or "moving_mean" in arrays:
        return "bn"
    kernel = arrays.get("kernel")
    if kernel is None:
        return None
    return {4: "conv", 2: "dense"}.get(kernel.ndim)


def _legacy_layers(f: Any) -> list[KerasLayer]:
    """Layers of a legacy HDF5 file in ``layer_names`` order; nested models are flattened by weight name."""
    root = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in root.attrs:
        raise KerasFormatError("is an HDF5 file without Keras layer names (not a Keras model or weights file)")
    layers: list[KerasLayer] = []
    for lname in (_text(n) for n in root.attrs["layer_names"]):
        group = root[lname]
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for wname in (_text(n) for n in group.attrs.get("weight_names", [])):
            owner, _, var = wname.removesuffix(":0").rpartition("/")
            grouped.setdefault(owner or lname, {})[var] = _read(group[wname])
        for owner, arrays in grouped.items():
            kind = _kind(arrays)
            if kind:
                layers.append(KerasLayer(owner, kind, arrays))
    return layers


_CLASS_KIND = {"conv2d": "conv", "batch_normalization": "bn", "dense": "dense"}
_VAR_NAMES = {"conv": ("kernel", "bias"), "dense": ("kernel", "bias"), "bn": _BN_VARS}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("conv2_d", "conv2d")


def _config_names(config: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """``{storage path (e.g. conv2d_3): layer name}`` and layer configs from a ``.keras`` config.json."""
    if not config:
        return {}, {}
    paths: dict[str, str] = {}
    configs: dict[str, dict[str, Any]] = {}
    used: dict[str, int] = {}
    for layer in config.get("config", {}).get("layers", []):
        cls = _snake(str(layer.get("class_name", "")))
        n = used.get(cls, -1) + 1
        used[cls] = n
        lname = str(layer.get("config", {}).get("name") or layer.get("name"))
        paths[cls if n == 0 else f"{cls}_{n}"] = lname
        configs[lname] = dict(layer.get("config", {}))
    return paths, configs


def _keras3_layers(f: Any, config: dict[str, Any] | None) -> tuple[list[KerasLayer], bool]:
    """Layers of a Keras 3 weights file (``layers/<class>_<n>/vars/<i>``), named from the file or config.json."""
    if "layers" not in f:
        raise KerasFormatError("is a Keras 3 weights file without a 'layers' group")
    paths, configs = _config_names(config)
    layers: list[KerasLayer] = []

    def walk(group: Any) -> None:
        for path in group:
            sub = group[path]
            if "layers" in sub:  # a nested model
                walk(sub["layers"])
                continue
            kind = _CLASS_KIND.get(re.sub(r"_\d+$", "", path))
            if kind is None or "vars" not in sub or not len(sub["vars"]):
                continue
            values = [_read(sub["vars"][str(i)]) for i in range(len(sub["vars"]))]
            lname = _text(sub["vars"].attrs.get("name", "")) or paths.get(path) or f"#{path}"
            if kind == "bn" and len(values) != 4:
                raise KerasFormatError(f"has a BatchNormalization {lname!r} with {len(values)} variables; only "
                                       "center=True, scale=True (as keras.applications) is supported")
            layers.append(KerasLayer(lname, kind, dict(zip(_VAR_NAMES[kind], values, strict=False)),
                                     configs.get(lname, {})))

    walk(f["layers"])
    unnamed = any(layer.name.startswith("#") for layer in layers)
    if unnamed:
        _name_by_order(layers)
    return layers, unnamed


def _order(layer: KerasLayer) -> tuple[str, int]:
    path = layer.name.removeprefix("#")
    m = re.search(r"_(\d+)$", path)
    return (re.sub(r"_\d+$", "", path), int(m.group(1)) if m else 0)


def _name_by_order(layers: list[KerasLayer]) -> None:
    """Give keras.applications names to the layers of a weights file that stores none (older Keras 3 writes only
    ``<class>_<n>``, numbered in the model's layer order): walk the convolutions — a 1×1 followed by a 3×3 is a
    dense layer, a 1×1 followed by a 1×1 (or nothing) a transition — and lay the BatchNorms along the same path."""
    by_kind = {k: sorted((x for x in layers if x.kind == k), key=_order) for k in ("conv", "bn", "dense")}
    convs, bns = by_kind["conv"], by_kind["bn"]
    size = [int(c.arrays["kernel"].shape[0]) for c in convs]
    if not convs or size[0] != 7:
        raise KerasFormatError("names no layers and does not start with a 7×7 stem convolution; "
                               "save the whole model with model.save('model.keras') and load that file")
    conv_names, bn_names = ["conv1_conv"], ["conv1_bn"]
    b, j, i = 2, 1, 1
    while i < len(convs):
        if size[i] == 1 and i + 1 < len(convs) and size[i + 1] == 3:
            conv_names += [f"conv{b}_block{j}_1_conv", f"conv{b}_block{j}_2_conv"]
            bn_names += [f"conv{b}_block{j}_0_bn", f"conv{b}_block{j}_1_bn"]
            j, i = j + 1, i + 2
        elif size[i] == 1 and j > 1:
            conv_names.append(f"pool{b}_conv")
            bn_names.append(f"pool{b}_bn")
            b, j, i = b + 1, 1, i + 1
        else:
            raise KerasFormatError(f"names no layers, and its convolution {i} ({size[i]}×{size[i]})"
                                   " does not fit the DenseNet pattern; save the model as .keras and load that")
    bn_names.append("bn")
    if len(bn_names) != len(bns):
        raise KerasFormatError(f"names no layers and has {len(bns)} BatchNorms where a DenseNet "
                               f"of its convolutions has {len(bn_names)}; save the model as .keras and load that")
    for layer, lname in (*zip(convs, conv_names, strict=True), *zip(bns, bn_names, strict=True)):
        layer.name = lname
    for k, layer in enumerate(by_kind["dense"]):
        layer.name = f"dense_{k}"
    layers[:] = [*convs, *bns, *by_kind["dense"]]


def _legacy_config(f: Any) -> dict[str, Any] | None:
    raw = f.attrs.get("model_config")
    if raw is None:
        return None
    try:
        return json.loads(_text(raw))
    except ValueError:
        return None


def _layer_configs(config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Layer configs by name, nested models included (a DenseNet inside a Sequential)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict) and "name" in node["config"]:
                found[str(node["config"]["name"])] = node["config"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return found


def read_keras(data: bytes, name: str, kind: str) -> KerasWeights:
    """Map a ``.keras`` (``kind="keras"``) or HDF5 (``kind="hdf5"``) file onto torchvision DenseNet keys."""
    import h5py

    config: dict[str, Any] | None = None
    try:
        if kind == "keras":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                sizes = {i.filename: i.file_size for i in z.infolist()}
                if sizes["config.json"] > 64 * 2**20 or sizes["model.weights.h5"] > 4 * MAX_ARRAY_BYTES:
                    raise KerasFormatError("has members that unpack to an implausible size; not a DenseNet file")
                config = json.loads(z.read("config.json"))
                data = z.read("model.weights.h5")
            family = "Keras 3 .keras model"
        with h5py.File(io.BytesIO(data), "r") as f:
            if "layers" in f:
                layers, unnamed = _keras3_layers(f, config)
                family = family if kind == "keras" else "Keras 3 .weights.h5"
                if unnamed:
                    family += " (layers named from their order: the file stores no names)"
            else:
                config = _legacy_config(f)
                layers = _legacy_layers(f)
                slash = any("/" in layer.name for layer in layers)
                family = f"legacy Keras HDF5 ({'tf.keras 2' if slash else 'Keras 3'} layer names)"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, KerasFormatError):
            raise
        raise KerasFormatError(f"is damaged or unreadable ({exc}); save it again with "
                               "model.save('model.keras')") from None
    configs = _layer_configs(config)
    for layer in layers:
        layer.config = layer.config or configs.get(layer.name, {})
    weights = _to_torch(layers, family)
    weights.input_size = _input_size(config)
    if config is None:
        weights.notes.append("no model config in the file: classifier activation assumed softmax")
    return weights


def _input_size(config: dict[str, Any] | None) -> int | None:
    for cfg in _layer_configs(config).values():
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int) and shape[1] == shape[2]:
            return int(shape[1])
    return None


def _conv(kernel: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def _bn(state: dict[str, Tensor], key: str, layer: KerasLayer) -> None:
    eps = float(layer.config.get("epsilon", KERAS_BN_EPS))
    a = layer.arrays
    var = a["moving_variance"].astype(np.float64) + (eps - TORCH_BN_EPS)
    state[f"{key}.weight"] = torch.from_numpy(a["gamma"].astype(np.float32))
    state[f"{key}.bias"] = torch.from_numpy(a["beta"].astype(np.float32))
    state[f"{key}.running_mean"] = torch.from_numpy(a["moving_mean"].astype(np.float32))
    state[f"{key}.running_var"] = torch.from_numpy(var.astype(np.float32))
    if eps < TORCH_BN_EPS and float(var.min()) <= 0:
        raise KerasFormatError(f"has a BatchNormalization {layer.name!r} with epsilon {eps} below torch's 1e-5 and a "
                               "zero variance; it cannot be reproduced exactly")


def _dense(state: dict[str, Tensor], key: str, layer: KerasLayer) -> None:
    state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(layer.arrays["kernel"].T)).float()
    if "bias" in layer.arrays:
        state[f"{key}.bias"] = torch.from_numpy(layer.arrays["bias"].astype(np.float32))


def _activation(layer: KerasLayer, default: str) -> str:
    act = layer.config.get("activation", default)
    return act if isinstance(act, str) else default


def _forward_order(key: str) -> tuple[int, ...]:
    """Sort key putting state_dict entries in forward order (SE sites are placed by where their keys sit)."""
    if m := re.match(r"features\.denseblock(\d+)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)", key):
        return (2, int(m.group(1)), 0, int(m.group(2)), ("norm1", "conv1", "norm2", "conv2").index(m.group(3)))
    if m := re.match(r"features\.se(\d+)\.fc\.(\d)", key):
        return (2, int(m.group(1)), 1, int(m.group(2)))
    if m := re.match(r"features\.transition(\d+)\.(norm|conv)", key):
        return (2, int(m.group(1)), 2, 0 if m.group(2) == "norm" else 1)
    order = ("features.conv0", "features.norm0", "", "features.norm5", "classifier")
    return (next(i for i, p in enumerate(order) if p and key.startswith(p + ".")),)


def _to_torch(layers: list[KerasLayer], family: str) -> KerasWeights:
    state: dict[str, Tensor] = {}
    blocks: dict[int, int] = {}
    dense: list[KerasLayer] = []
    other: list[str] = []
    bn_final: KerasLayer | None = None
    for layer in layers:
        base = layer.name.rsplit("/", 1)[-1] if "/" in layer.name and not _STEM.match(layer.name) else layer.name
        if m := _STEM.match(layer.name):
            key = "features.conv0" if m.group(1) == "conv" else "features.norm0"
        elif m := _LAYER.match(base):
            b, j, part, what = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
            blocks[b] = max(blocks.get(b, 0), j)
            sub = {("0", "bn"): "norm1", ("1", "conv"): "conv1", ("1", "bn"): "norm2", ("2", "conv"): "conv2"}
            if (part, what) not in sub:
                other.append(layer.name)
                continue
            key = f"features.denseblock{b - 1}.denselayer{j}.{sub[(part, what)]}"
        elif m := _TRANSITION.match(base):
            key = f"features.transition{int(m.group(1)) - 1}.{'norm' if m.group(2) == 'bn' else 'conv'}"
        elif base == "bn" and layer.kind == "bn":
            bn_final = layer
            continue
        elif layer.kind == "dense":
            dense.append(layer)
            continue
        else:
            other.append(f"{layer.name} ({layer.kind})")
            continue
        if layer.kind == "conv":
            if "bias" in layer.arrays:
                raise KerasFormatError(f"has a convolution {layer.name!r} with a bias; keras.applications DenseNets "
                                       "have none")
            state[f"{key}.weight"] = _conv(layer.arrays["kernel"])
        elif layer.kind == "bn":
            _bn(state, key, layer)
        else:
            other.append(f"{layer.name} ({layer.kind})")
    if "features.conv0.weight" not in state or not blocks:
        raise KerasFormatError("has no keras.applications-style DenseNet layers (conv1_conv / conv1/conv, "
                               "conv2_block1_…); only keras.applications DenseNet-121/169/201 naming is "
                               "supported")
    if other:
        shown = ", ".join(other[:5]) + (" …" if len(other) > 5 else "")
        raise KerasFormatError(f"has layers outside the keras.applications DenseNet and the seed's SE: {shown}")
    if bn_final is None:
        raise KerasFormatError("has no final BatchNormalization 'bn' after the last dense block")
    if sorted(blocks) != list(range(2, len(blocks) + 2)):
        raise KerasFormatError(f"has dense blocks conv{sorted(blocks)}, not numbered conv2, conv3, …")
    channels = int(bn_final.arrays["gamma"].shape[0])
    last = len(blocks)
    weights = KerasWeights(state=state, family=family)
    if not dense:
        raise KerasFormatError("has no classifier Dense layer (saved with include_top=False?); add the "
                               "classifier and save the whole model")
    head, se_layers = dense[-1], dense[:-1]
    if se_layers:
        shapes = [tuple(x.arrays["kernel"].shape) for x in se_layers]
        if len(se_layers) != 2 or shapes[0][0] != channels or shapes[1] != (shapes[0][1], channels):
            raise KerasFormatError(f"has Dense layers of kernel shapes {shapes} besides the classifier; only the "
                                   f"seed's SE (Dense({channels}→h, relu) → Dense(h→{channels}, sigmoid)) after the "
                                   "last dense block is supported (custom Dense heads are not)")
        acts = (_activation(se_layers[0], "relu"), _activation(se_layers[1], "sigmoid"))
        if acts != ("relu", "sigmoid"):
            raise KerasFormatError(f"has SE Dense layers with activations {acts}; only (relu, sigmoid) is supported")
        _dense(state, f"features.se{last}.fc.0", se_layers[0])
        _dense(state, f"features.se{last}.fc.2", se_layers[1])
        weights.family += f" (SE after dense block {last}: {se_layers[0].name}, {se_layers[1].name})"
    _bn(state, "features.norm5", bn_final)  # after the SE: key order tells "before the final norm"
    if head.arrays["kernel"].shape[0] != channels:
        raise KerasFormatError(f"has a classifier {head.name!r} that takes {head.arrays['kernel'].shape[0]} inputs, "
                               f"not the {channels} pooled DenseNet features; custom heads are not supported")
    _dense(state, "classifier", head)
    act = _activation(head, "softmax")
    if act not in ("softmax", "sigmoid"):
        act = "softmax"
        weights.notes.append(f"classifier activation {head.config.get('activation')!r} shown as softmax scores")
    weights.head_activation = act
    weights.state = dict(sorted(state.items(), key=lambda kv: _forward_order(kv[0])))
    weights.notes.append(f"BatchNorm epsilon {KERAS_BN_EPS:g} folded into running_var (torch uses 1e-5)")
    return weights
