"""sedensenet: SE-DenseNet models and tools that make channel attention visible.

The exports below load on first use (PEP 562), so ``import sedensenet`` and ``sedensenet --help`` do not pay for
importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Capture": "sedensenet.analysis.capture",
    "SERecord": "sedensenet.analysis.capture",
    "capture_excitations": "sedensenet.analysis.capture",
    "describe_device": "sedensenet.device",
    "SedensenetError": "sedensenet.errors",
    "resolve_device": "sedensenet.device",
    "CheckpointError": "sedensenet.models.checkpoint",
    "LoadedModel": "sedensenet.models.checkpoint",
    "load_checkpoint": "sedensenet.models.checkpoint",
    "save_checkpoint": "sedensenet.models.checkpoint",
    "ARCHS": "sedensenet.models.densenet",
    "SE_PLACEMENTS": "sedensenet.models.densenet",
    "ModelConfig": "sedensenet.models.densenet",
    "SEDenseNet": "sedensenet.models.densenet",
    "SELayer": "sedensenet.models.densenet",
    "build_from_config": "sedensenet.models.densenet",
    "build_model": "sedensenet.models.densenet",
}

__all__ = [
    "ARCHS", "SE_PLACEMENTS", "Capture", "CheckpointError", "LoadedModel", "ModelConfig", "SEDenseNet", "SELayer",
    "SERecord", "SedensenetError", "build_from_config", "build_model", "capture_excitations", "describe_device",
    "load_checkpoint", "resolve_device", "save_checkpoint",
]
__version__ = "0.1.0"

if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from sedensenet.analysis.capture import Capture, SERecord, capture_excitations
    from sedensenet.device import describe_device, resolve_device
    from sedensenet.errors import SedensenetError
    from sedensenet.models.checkpoint import CheckpointError, LoadedModel, load_checkpoint, save_checkpoint
    from sedensenet.models.densenet import (
        ARCHS,
        SE_PLACEMENTS,
        ModelConfig,
        SEDenseNet,
        SELayer,
        build_from_config,
        build_model,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sedensenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
