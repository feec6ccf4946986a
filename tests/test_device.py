"""Device choice, with CUDA/MPS availability mocked (so every branch runs on any machine)."""

from __future__ import annotations

import pytest
import torch

from sedensenet.device import describe_device, resolve_device
from sedensenet.errors import ConfigError, SedensenetError


def _available(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                               (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool,
                                             expected: str) -> None:
    _available(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)


@pytest.mark.parametrize("asked", ["cuda", "cuda:1", "mps"])
def test_asking_for_a_missing_device_is_a_user_error(monkeypatch: pytest.MonkeyPatch, asked: str) -> None:
    _available(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ConfigError, match="not available; use 'auto' or 'cpu'") as info:
        resolve_device(asked)
    assert isinstance(info.value, SedensenetError)


def test_explicit_devices_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    _available(monkeypatch, cuda=True, mps=False)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RuntimeError):
        resolve_device("tpu")  # not a torch device type at all


def test_describe_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _d=None: "Fake GPU 9000")
    assert describe_device(torch.device("cuda")) == "CUDA: Fake GPU 9000"
    assert describe_device(torch.device("mps")) == "Apple MPS (Metal GPU)"
    assert describe_device(torch.device("cpu")) == f"CPU ({torch.get_num_threads()} threads)"
