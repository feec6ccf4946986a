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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def amp_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for inference on ``device`` (``None`` = plain fp32).

    ``"auto"`` uses mixed precision only on CUDA — bf16 where the GPU supports it (same range as fp32, so no
    overflow in deep DenseNets), else fp16 — and fp32 elsewhere: CPU autocast is slower than fp32 on most CPUs.
    Attribution never uses this (gradients and Captum's maps stay fp32).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or device.type not in ("cuda", "cpu"):
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 autocast is for CUDA; use bf16 or fp32 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, precision: str = "auto") -> torch.autocast:
    """An autocast context for inference on ``device`` (disabled when :func:`amp_dtype` says fp32)."""
    dtype = amp_dtype(device, precision)
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", dtype=dtype,
                          enabled=dtype is not None)
