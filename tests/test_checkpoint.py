"""Checkpoints: torchvision and seed state_dicts, own format round trip, hostile and broken files."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import pytest
import torch
import torchvision
from seed_reference import SeedDenseNet, randomise_bn
from torch import nn

from sedensenet import CheckpointError, build_model, load_checkpoint, save_checkpoint
from sedensenet.models.checkpoint import DEFAULT_MAX_BYTES


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize("arch", ["densenet121", "densenet169", "densenet201", "densenet161"])
def test_torchvision_state_dict_gives_torchvision_logits(arch: str, tmp_path: Path) -> None:
    reference = randomise_bn(getattr(torchvision.models, arch)(num_classes=1000)).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save(reference.state_dict(), path)
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.config.se == "none" and loaded.config.arch == arch
    assert loaded.meta.source == "torchvision"
    assert len(loaded.classes) == 1000 and loaded.classes[0] == "tench"
    assert any("ImageNet" in a for a in loaded.meta.assumed)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), reference(x)) <= 1e-5


def test_legacy_torchvision_keys_and_dataparallel_prefix(tmp_path: Path) -> None:
    reference = randomise_bn(torchvision.models.densenet121(num_classes=7)).eval()
    legacy = {}
    for key, value in reference.state_dict().items():
        key = re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key)  # norm1 -> norm.1 (old files)
        legacy["module." + key] = value
    assert any(".norm.1." in k for k in legacy)
    path = tmp_path / "legacy.pth"
    torch.save(legacy, path)
    loaded = load_checkpoint(path, device="cpu")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), reference(x)) <= 1e-5
    assert loaded.classes == [f"class_{i}" for i in range(7)]


@pytest.mark.parametrize("small_inputs,size", [(True, 32), (False, 96)])
def test_seed_course_state_dict_loads_with_same_logits(small_inputs: bool, size: int, tmp_path: Path) -> None:
    seed = randomise_bn(SeedDenseNet(small_inputs=small_inputs)).eval()
    # give the SE weights some spread so gates differ from 0.5
    keys = list(seed.state_dict())
    assert "features.0.weight" in keys and any(k.endswith("se1.fc.0.weight") for k in keys)
    assert "features.norm_final.weight" in keys
    path = tmp_path / "seed.pth"
    torch.save(seed.state_dict(), path)
    loaded = load_checkpoint(path, device="cpu")
    cfg = loaded.config
    assert (cfg.se, cfg.growth_rate, cfg.block_config, cfg.num_init_features, cfg.num_classes) == (
        "layer", 32, (6, 12, 24, 16), 24, 10)
    assert cfg.stem == ("small" if small_inputs else "imagenet")
    assert cfg.se_bias is False and cfg.se_reduction == 16
    assert loaded.meta.source == "seed"
    assert loaded.meta.input_size == (32 if small_inputs else 224)
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), seed(x)) <= 1e-5


def test_seed_with_fixed_hidden_width_and_bias_is_inferred(tmp_path: Path) -> None:
    # Keras-seed style: one SE after the last block, 16 hidden units with bias.
    model = randomise_bn(build_model("densenet121", se="final", se_hidden=16, se_bias=True, num_classes=2)).eval()
    path = tmp_path / "final.pth"
    torch.save(model.state_dict(), path)
    loaded = load_checkpoint(path, device="cpu")
    assert (loaded.config.se, loaded.config.se_bias) == ("final", True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), model(x)) <= 1e-5


def test_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    model = randomise_bn(build_model("densenet_bc", depth=40, growth=12, se="block", reduction=4, num_classes=3))
    model.eval()
    meta = {"classes": ["cat", "dog", "owl"], "input_size": 48, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.25],
            "history": [{"epoch": 1, "train_loss": 1.2, "val_acc": 0.5}, {"epoch": 2, "train_loss": 0.9,
                                                                         "val_acc": 0.7}],
            "train_args": {"lr": 0.1, "seed": 3}}
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, meta)
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.config == model.config
    assert loaded.meta.stored() == meta  # typed on load, the same plain dict when stored again
    assert loaded.meta.as_dict()["mean"] == meta["mean"] and loaded.meta.warnings == []
    assert loaded.meta.assumed == [] and loaded.meta.source == "sedensenet"
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    # bytes and file objects load the same
    raw = path.read_bytes()
    assert torch.equal(load_checkpoint(raw, device="cpu").model(x), loaded.model(x))
    assert torch.equal(load_checkpoint(io.BytesIO(raw), device="cpu").model(x), loaded.model(x))
    assert not list(path.parent.glob("*.tmp")), "no temp files left behind"


def test_save_refuses_unsafe_or_inconsistent_metadata(tmp_path: Path) -> None:
    model = build_model("densenet_bc", depth=16, growth=12, reduction=4, num_classes=2)
    with pytest.raises(TypeError, match="meta.extra is a PosixPath|meta.extra is a WindowsPath"):
        save_checkpoint(tmp_path / "m.pt", model, {"extra": Path(".")})
    with pytest.raises(CheckpointError, match="3 classes but the classifier has 2"):
        save_checkpoint(tmp_path / "m.pt", model, {"classes": ["a", "b", "c"]})
    assert not (tmp_path / "m.pt").exists()


def test_cuda_saved_file_loads_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model("densenet_bc", depth=16, growth=12, reduction=4).eval()
    path = tmp_path / "cuda.pt"
    if torch.cuda.is_available():
        save_checkpoint(path, model.cuda())
        model.cpu()
    else:  # simulate: tag every storage as living on cuda:0, as a GPU save would
        monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_checkpoint(path, model)
        monkeypatch.undo()
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # proves the file really is tagged for CUDA
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.device.type == "cpu"
    assert next(loaded.model.parameters()).device.type == "cpu"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # runs open(marker, "w") when unpickled
        return (open, (str(self.marker), "w"))


def test_code_executing_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Evil(control)))  # control: a plain unpickle *does* run the payload
    assert control.exists()
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects .*refused"):
        load_checkpoint(path, device="cpu")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path.read_bytes(), device="cpu")
    assert not marker.exists()


def test_whole_pickled_model_is_refused_with_resave_hint(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(torchvision.models.densenet121(), path)
    with pytest.raises(CheckpointError, match=r"torchvision\.models\.densenet\.DenseNet.*model\.state_dict\(\)"):
        load_checkpoint(path, device="cpu")


def test_truncated_random_empty_and_oversized_files(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", build_model("densenet_bc", depth=16, growth=12, reduction=4))
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "trunc.pt", device="cpu")
    (tmp_path / "random.pt").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="not a checkpoint file|not a PyTorch checkpoint|truncated or corrupt"):
        load_checkpoint(tmp_path / "random.pt", device="cpu")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(b"", device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt", device="cpu")
    with pytest.raises(CheckpointError, match="over the 0 MiB limit"):
        load_checkpoint(good, device="cpu", max_bytes=1000)
    with pytest.raises(CheckpointError, match="over the"):
        load_checkpoint(data, device="cpu", max_bytes=1000)
    assert DEFAULT_MAX_BYTES >= 200 * 2**20  # densenet161 (~115 MB) must fit


def test_wrong_architecture_names_the_keys(tmp_path: Path) -> None:
    sd = build_model("densenet_bc", depth=16, growth=12, se="none", reduction=4).state_dict()
    sd["features.denseblock1.denselayer1.conv2.weight"] = torch.zeros(12, 48, 1, 1)
    sd["features.extra.weight"] = torch.zeros(3)
    del sd["features.denseblock2.denselayer1.norm1.bias"]
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "bad.pt", device="cpu")
    text = str(err.value)
    assert "missing keys: features.denseblock2.denselayer1.norm1.bias" in text
    assert "unexpected keys: features.extra.weight" in text
    assert "features.denseblock1.denselayer1.conv2.weight (file (12, 48, 1, 1), model (12, 48, 3, 3))" in text


def test_non_densenet_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match=r"not a DenseNet this tool can load: it holds a ResNet \(layer1"):
        load_checkpoint(tmp_path / "resnet.pt", device="cpu")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list, not a state_dict"):
        load_checkpoint(tmp_path / "list.pt", device="cpu")


def test_own_format_with_config_that_does_not_match_weights(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", build_model("densenet_bc", depth=16, growth=12, reduction=4))
    payload = torch.load(path, weights_only=True)
    payload["config"]["se"] = "none"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match.*unexpected keys: .*se\\.fc"):
        load_checkpoint(path, device="cpu")


def test_wrapper_dicts_and_missing_bn_counters(tmp_path: Path) -> None:
    model = randomise_bn(build_model("densenet_bc", depth=16, growth=12, se="layer", reduction=4)).eval()
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 9, "model_state_dict": sd, "optimizer": {}}, tmp_path / "wrapped.pt")
    loaded = load_checkpoint(tmp_path / "wrapped.pt", device="cpu")
    assert any("model_state_dict" in a for a in loaded.meta.assumed)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), model(x)) <= 1e-6


def test_auto_device_follows_availability(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "m.pt", build_model("densenet_bc", depth=16, growth=12, reduction=4))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    loaded = load_checkpoint(path)  # device="auto" by default; with no accelerator that is the CPU
    assert loaded.device == torch.device("cpu") and next(loaded.model.parameters()).device.type == "cpu"
    asked = []
    monkeypatch.setattr("sedensenet.models.checkpoint.resolve_device",
                        lambda d: asked.append(d) or torch.device("cpu"))
    load_checkpoint(path)
    assert asked == ["auto"]  # the choice itself is device.resolve_device's (tested with mocks in test_device)
    assert not loaded.model.training
    assert isinstance(loaded.model, nn.Module)


def test_seed_checkpoint_with_dead_se_loads_faithfully(tmp_path: Path) -> None:
    # growth 12 with r = 16: the seed's Linear(12, 12 // 16 = 0) — every gate is sigmoid(0) = 0.5
    seed = randomise_bn(SeedDenseNet(growth_rate=12, block_config=(2, 2), num_init_features=16)).eval()
    assert seed.features.denseblock1.denselayer1.se1.fc[0].weight.shape == (0, 12)
    torch.save(seed.state_dict(), tmp_path / "dead.pth")
    loaded = load_checkpoint(tmp_path / "dead.pth", device="cpu")
    assert loaded.config.se_hidden == 0
    assert any("constant 0.5" in a for a in loaded.meta.assumed)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert _max_diff(loaded.model(x), seed(x)) <= 1e-5
