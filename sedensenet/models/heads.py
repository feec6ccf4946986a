"""Classifier heads of fine-tuned DenseNets, rebuilt exactly from state_dict keys and shapes.

Fine-tunes replace torchvision's ``classifier = Linear`` with ``Sequential(Dropout, Linear)``,
``Sequential(Linear, Sigmoid)`` (multi-label, CheXNet) or small MLPs. Only modules with weights appear in a
state_dict, so the positions of parameter-free modules (ReLU, Dropout, Sigmoid) are inferred from index gaps by
the standard pattern and stated, never guessed silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

ACTIVATIONS = ("softmax", "sigmoid")
_INDEXED = re.compile(r"^classifier\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


@dataclass
class HeadSpec:
    """A head as plain data: ``layers`` is a list of ``{"type": linear|batchnorm|relu|dropout, …}`` in
    Sequential order (empty for a bare ``nn.Linear``), ``activation`` how outputs become scores."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    activation: str = "softmax"

    def as_dict(self) -> dict[str, Any]:
        return {"layers": [dict(x) for x in self.layers], "activation": self.activation}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadSpec:
        layers = list(data.get("layers") or [])
        activation = str(data.get("activation", "softmax"))
        if activation not in ACTIVATIONS:
            raise ValueError(f"head activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        for layer in layers:
            if not isinstance(layer, Mapping) or layer.get("type") not in ("linear", "batchnorm", "relu", "dropout"):
                raise ValueError(f"head layer {layer!r} is not linear, batchnorm, relu or dropout")
        return cls([dict(x) for x in layers], activation)

    @property
    def num_classes(self) -> int:
        linears = [x for x in self.layers if x["type"] == "linear"]
        return int(linears[-1]["out"]) if linears else 0

    def describe(self) -> str:
        if not self.layers:
            return f"Linear, {self.activation}"
        names = {"linear": "Linear", "batchnorm": "BatchNorm1d", "relu": "ReLU", "dropout": "Dropout"}
        return "Sequential(" + ", ".join(names[x["type"]] for x in self.layers) + f"), {self.activation}"


def infer_head(state: Mapping[str, Tensor]) -> tuple[HeadSpec | None, list[str]]:
    """The head of a (prefix-free) state_dict with ``classifier.<i>.*`` keys, and notes on what was assumed.

    ``None`` for a plain ``classifier.weight`` (the model's own Linear). Raises ``ValueError`` naming what does
    not fit (a layer type without a rule, a chain whose widths do not connect).
    """
    indexed: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        if m := _INDEXED.match(key):
            indexed.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if not indexed:
        return None, []
    params: dict[int, dict[str, Any]] = {}
    for i, p in sorted(indexed.items()):
        w = p.get("weight")
        if "running_mean" in p:
            params[i] = {"type": "batchnorm", "features": int(p["running_mean"].shape[0]), "affine": w is not None}
        elif w is not None and w.dim() == 2:
            params[i] = {"type": "linear", "in": int(w.shape[1]), "out": int(w.shape[0]), "bias": "bias" in p}
        else:
            shape = tuple(w.shape) if w is not None else ()
            raise ValueError(f"classifier.{i} has a weight of shape {shape}: not a Linear or BatchNorm1d head layer")
    linear_at = [i for i, p in params.items() if p["type"] == "linear"]
    if not linear_at:
        raise ValueError("the classifier has no Linear layer")
    last = max(params)
    if params[last]["type"] != "linear":
        raise ValueError(f"the classifier ends with a {params[last]['type']} layer (classifier.{last}), "
                         "not a Linear giving the class scores")
    layers: list[dict[str, Any]] = []
    notes: list[str] = []
    seen_linear = False
    activated = False
    for i in range(last + 1):
        if i in params:
            layer = params[i]
            if layer["type"] == "linear":
                seen_linear, activated = True, False
            layers.append(layer)
        elif seen_linear and not activated:
            layers.append({"type": "relu"})
            activated = True
        else:
            layers.append({"type": "dropout"})
    width = None
    for layer in layers:
        if layer["type"] == "linear":
            if width is not None and layer["in"] != width:
                raise ValueError(f"head widths do not connect: a Linear takes {layer['in']} inputs after {width}")
            width = layer["out"]
        elif layer["type"] == "batchnorm":
            if width is not None and layer["features"] != width:
                raise ValueError(f"head widths do not connect: BatchNorm1d of {layer['features']} after {width}")
    filled = [f"{t} at classifier.{i}" for i, t in enumerate(x["type"] for x in layers) if i not in params]
    if filled:
        notes.append("head modules without weights are not in the file; assumed the standard pattern "
                     f"(one ReLU after each hidden Linear, Dropout elsewhere): {', '.join(filled)}")
    activation = "softmax"
    if len(linear_at) == 1 and linear_at[0] == 0 and len(layers) == 1:
        activation = "sigmoid"
        notes.append("classifier is Sequential(Linear, …) with nothing before the Linear: read as the multi-label "
                     "Sequential(Linear, Sigmoid) head (CheXNet style); scores are independent sigmoids")
    else:
        notes.append("a Sigmoid after the last Linear would not be visible in the file; scores use softmax")
    return HeadSpec(layers, activation), notes


def build_head(spec: HeadSpec) -> nn.Module:
    """The ``nn.Sequential`` for ``spec`` whose state_dict keys are ``<i>.weight`` … exactly as in the file."""
    modules: list[nn.Module] = []
    for layer in spec.layers:
        kind = layer["type"]
        if kind == "linear":
            modules.append(nn.Linear(layer["in"], layer["out"], bias=layer.get("bias", True)))
        elif kind == "batchnorm":
            modules.append(nn.BatchNorm1d(layer["features"], affine=layer.get("affine", True)))
        elif kind == "relu":
            modules.append(nn.ReLU())
        else:
            modules.append(nn.Dropout(float(layer.get("p", 0.0))))
    return nn.Sequential(*modules)


def describe_head(module: nn.Module, activation: str = "softmax") -> HeadSpec | None:
    """Spec of a model's classifier (``None`` for a plain Linear), so a checkpoint can rebuild it."""
    if isinstance(module, nn.Linear):
        return None if activation == "softmax" else HeadSpec([], activation)
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"classifier of type {type(module).__name__} cannot be stored; use Linear or Sequential")
    layers: list[dict[str, Any]] = []
    for m in module:
        if isinstance(m, nn.Linear):
            layers.append({"type": "linear", "in": m.in_features, "out": m.out_features, "bias": m.bias is not None})
        elif isinstance(m, nn.BatchNorm1d):
            layers.append({"type": "batchnorm", "features": m.num_features, "affine": m.affine})
        elif isinstance(m, nn.ReLU):
            layers.append({"type": "relu"})
        elif isinstance(m, nn.Dropout):
            layers.append({"type": "dropout", "p": float(m.p)})
        else:
            raise TypeError(f"classifier layer {type(m).__name__} cannot be stored; use Linear/BatchNorm1d/ReLU/"
                            "Dropout")
    return HeadSpec(layers, activation)


def install_head(model: nn.Module, spec: HeadSpec | None) -> None:
    """Replace ``model.classifier`` by the head of ``spec`` and record how its outputs become scores."""
    if spec is not None and spec.layers:
        linears = [x for x in spec.layers if x["type"] == "linear"]
        first_in = next((x.get("in") or x.get("features") for x in spec.layers
                         if x["type"] in ("linear", "batchnorm")), None)
        if first_in != model.classifier.in_features or not linears:
            raise ValueError(f"head takes {first_in} features but the DenseNet gives {model.classifier.in_features}")
        model.classifier = build_head(spec)
    model.head_activation = spec.activation if spec is not None else "softmax"
