"""sedensenet: SE-DenseNet models and tools that make channel attention visible."""

from sedensenet.analysis.capture import Capture, SERecord, capture_excitations
from sedensenet.device import describe_device, resolve_device
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

__all__ = [
    "ARCHS",
    "SE_PLACEMENTS",
    "Capture",
    "CheckpointError",
    "LoadedModel",
    "ModelConfig",
    "SEDenseNet",
    "SELayer",
    "SERecord",
    "build_from_config",
    "build_model",
    "capture_excitations",
    "describe_device",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]

__version__ = "0.1.0"
