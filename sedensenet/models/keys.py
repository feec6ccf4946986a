"""State-dict key remapping (torchvision legacy, DataParallel, course seed) and architecture inference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from sedensenet.models.densenet import ARCHS, ModelConfig
from sedensenet.models.se_keys import infer_se, place_se_modules

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
PREFIXES = ("module.", "_orig_mod.", "model.")
# torchvision's own legacy remap (densenet._load_state_dict): "norm.1.weight" -> "norm1.weight".
_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
_SEED_STEM = {"0": "conv0", "1": "norm0"}
_LAYER = re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\.")


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) for k in obj) and any(isinstance(v, Tensor) for v in obj.values())


def unwrap_state_dict(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The state_dict inside ``obj`` (itself, or a common wrapper entry) and the wrapper key used."""
    if _is_state_dict(obj) and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj), None
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key]), key
    if _is_state_dict(obj):
        return dict(obj), None
    return None, None


def normalise_keys(state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Rename keys to this package's (torchvision) names; returns the new dict and the detected origin."""
    for prefix in PREFIXES:
        while state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    origin = "torchvision"
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = _LEGACY.sub(r"\1\2", key)
        parts = new.split(".")
        if len(parts) > 2 and parts[0] == "features" and parts[1] in _SEED_STEM:
            parts[1] = _SEED_STEM[parts[1]]
            origin = "seed"
        if len(parts) > 1 and parts[:2] == ["features", "norm_final"]:
            parts[1] = "norm5"
            origin = "seed"
        if "se1" in parts and any(p.startswith("denselayer") for p in parts):
            parts[parts.index("se1")] = "se"
            origin = "seed"
        out[".".join(parts)] = value
    if any(".se." in k or re.match(r"features\.se\d+\.", k) for k in out) and origin != "seed":
        origin = "sedensenet-state_dict"
    out, renamed = place_se_modules(out)
    if renamed and origin != "seed":
        origin = "se-densenet (SE sites placed from key order)"
    return out, origin


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, Tensor):
        sample = ", ".join(list(state)[:5])
        raise ValueError(f"expected key {key!r} (keys start: {sample} …)")
    return tuple(value.shape)


def infer_config(state: Mapping[str, Any]) -> tuple[ModelConfig, list[str]]:
    """Architecture of a (normalised) DenseNet state_dict, read from its key names and shapes."""
    init, in_ch, k, _ = _shape(state, "features.conv0.weight")
    stem = "imagenet" if "features.norm0.weight" in state else "small"
    if stem == "small" and k != 3:
        raise ValueError(f"stem conv is {k}x{k} without a batch norm after it; expected a 3x3 small-input stem")
    counts: dict[int, int] = {}
    for key in state:
        if m := _LAYER.match(key):
            b, j = int(m.group(1)), int(m.group(2))
            counts[b] = max(counts.get(b, 0), j)
    if not counts:
        raise ValueError("no dense blocks (features.denseblock*.denselayer*) found")
    if sorted(counts) != list(range(1, len(counts) + 1)):
        raise ValueError(f"dense blocks {sorted(counts)} are not numbered 1…n")
    blocks = [counts[b] for b in sorted(counts)]
    growth = _shape(state, "features.denseblock1.denselayer1.conv2.weight")[0]
    inter = _shape(state, "features.denseblock1.denselayer1.conv1.weight")[0]
    if inter % growth:
        raise ValueError(f"bottleneck width {inter} is not a multiple of the growth rate {growth}")
    compression = 0.5
    if len(blocks) > 1:
        out_c, in_c = _shape(state, "features.transition1.conv.weight")[:2]
        compression = out_c / in_c
    num_classes = _shape(state, "classifier.weight")[0]
    cfg: dict[str, Any] = dict(growth_rate=growth, block_config=tuple(blocks), num_init_features=init,
                               bn_size=inter // growth, compression=compression, stem=stem,
                               num_classes=num_classes, in_channels=in_ch, arch=_arch_name(init, growth, blocks, stem))
    se_fields, notes = infer_se(state, blocks)
    cfg.update(se_fields)
    return ModelConfig(**cfg), notes


def _arch_name(init: int, growth: int, blocks: list[int], stem: str) -> str:
    for name, spec in ARCHS.items():
        if (spec.get("num_init_features"), spec.get("growth_rate"), tuple(spec.get("block_config", ()))) == (
                init, growth, tuple(blocks)) and spec.get("stem", "imagenet") == stem:
            return name
    if stem == "small" and len(set(blocks)) == 1 and len(blocks) == 3:
        return f"densenet_bc-{6 * blocks[0] + 4}-k{growth}"
    return "custom"
