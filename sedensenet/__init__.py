"""sedensenet: SE-DenseNet models and tools that make channel attention visible."""

from .checkpoint import CheckpointError, LoadedModel, load_checkpoint, save_checkpoint
from .device import describe_device, resolve_device
from .model import ARCHS, SE_PLACEMENTS, ModelConfig, SEDenseNet, SELayer, build_from_config, build_model

__all__ = [
    "ARCHS",
    "SE_PLACEMENTS",
    "CheckpointError",
    "LoadedModel",
    "ModelConfig",
    "SEDenseNet",
    "SELayer",
    "build_from_config",
    "build_model",
    "describe_device",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
]

__version__ = "0.1.0"
