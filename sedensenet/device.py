"""Pick the compute device (CUDA, else MPS, else CPU) and describe it in words."""

from __future__ import annotations

import torch

from sedensenet.errors import ConfigError

DEVICE_HELP = "auto (CUDA, else MPS, else CPU; the default), cpu, cuda, cuda:1, mps"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` → CUDA if available, else Apple MPS, else CPU; anything else is parsed.

    Asking for a device that is not present is an error that says what is available.
    """
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {str(device)!r} requested but MPS is not available; use 'auto' or 'cpu'")
    return dev


def describe_device(device: torch.device) -> str:
    """Human-readable device name, e.g. ``"CUDA: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 threads)"``."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS (Metal GPU)"
    return f"CPU ({torch.get_num_threads()} threads)"
