"""Checkpoints users already have: wrapped fine-tunes, heads, training-framework files, safetensors, half
precision — each compared with the family's own model — and one clear message for what cannot load."""

from __future__ import annotations

import argparse
import io
import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors
from seed_reference import randomise_bn
from torch import nn
from torchvision.models.densenet import DenseNet

from sedensenet import CheckpointError, load_checkpoint, save_checkpoint
from sedensenet.analysis.capture import capture_excitations
from sedensenet.cli.main import main as cli_main

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def small_densenet(num_classes: int = 5, seed: int = 0) -> DenseNet:
    """A torchvision DenseNet (the class fine-tunes start from), small, with random BN statistics."""
    torch.manual_seed(seed)
    return randomise_bn(DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16,
                                 num_classes=num_classes)).eval()


def randomise(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return module.eval()


def to_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def scores(model: nn.Module) -> torch.Tensor:
    """The loaded model's class scores as the CLI and the app show them."""
    return capture_excitations(model, X).probs


class Wrapper(nn.Module):
    """A DenseNet held as an attribute (``backbone.``, ``densenet121.``, ``net.`` …)."""

    def __init__(self, attr: str, net: nn.Module) -> None:
        super().__init__()
        setattr(self, attr, net)
        self.attr = attr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.attr)(x)


HEADS = {
    "dropout-linear": lambda n, c: nn.Sequential(nn.Dropout(0.2), nn.Linear(n, c)),
    "mlp": lambda n, c: nn.Sequential(nn.Linear(n, 24), nn.ReLU(), nn.Dropout(0.5), nn.Linear(24, c)),
    "mlp-bn": lambda n, c: nn.Sequential(nn.Linear(n, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.3),
                                         nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, c)),
    "mlp-relu-bn": lambda n, c: nn.Sequential(nn.Linear(n, 24), nn.ReLU(), nn.BatchNorm1d(24), nn.Dropout(0.3),
                                              nn.Linear(24, c)),
}


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("wrap", ["module.", "densenet121.", "backbone.", "model.", "net.", "_orig_mod.",
                                  "module.model._orig_mod."])
def test_wrapped_fine_tunes_with_heads_match_torchvision(wrap: str, head: str) -> None:
    reference = small_densenet()
    reference.classifier = HEADS[head](reference.classifier.in_features, 5)
    randomise(reference)
    state = {wrap + k: v for k, v in reference.state_dict().items()}
    loaded = load_checkpoint(to_bytes(state), device="cpu")
    with torch.no_grad():
        assert torch.allclose(loaded.model(X), reference(X), atol=1e-5, rtol=0)
        assert torch.allclose(scores(loaded.model), torch.softmax(reference(X), 1), atol=1e-4)
    assert loaded.meta.head_activation == "softmax"
    if head.startswith("mlp"):
        assert any("assumed the standard pattern" in a for a in loaded.meta.assumed)


def test_chexnet_style_multilabel_head_gives_sigmoid_scores(tmp_path: Path) -> None:
    densenet121 = small_densenet(num_classes=14)
    densenet121.classifier = nn.Sequential(nn.Linear(densenet121.classifier.in_features, 14), nn.Sigmoid())
    reference = nn.DataParallel(Wrapper("densenet121", densenet121)).eval()
    assert next(iter(reference.state_dict())).startswith("module.densenet121.features")
    path = tmp_path / "chexnet.pth.tar"
    torch.save({"state_dict": reference.state_dict(), "epoch": 3}, path)
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.meta.head_activation == "sigmoid"
    with torch.no_grad():
        expected = reference(X)
    assert torch.allclose(scores(loaded.model), expected, atol=1e-4)
    assert not torch.allclose(scores(loaded.model).sum(1), torch.ones(2))  # independent, not a softmax
    # the multi-label head survives conversion to a sedensenet checkpoint
    out = tmp_path / "converted.pt"
    assert cli_main(["convert", str(path), str(out)]) == 0
    again = load_checkpoint(out, device="cpu")
    assert again.meta.head_activation == "sigmoid"
    assert torch.allclose(scores(again.model), expected, atol=1e-4)
    assert "converted from" in again.meta.family


def test_mlp_head_survives_save_and_load(tmp_path: Path) -> None:
    reference = small_densenet()
    reference.classifier = randomise(HEADS["mlp-bn"](reference.classifier.in_features, 5))
    loaded = load_checkpoint(to_bytes(reference.state_dict()), device="cpu")
    save_checkpoint(tmp_path / "mlp.pt", loaded.model, {"classes": list("abcde")})
    again = load_checkpoint(tmp_path / "mlp.pt", device="cpu")
    assert isinstance(again.model.classifier, nn.Sequential) and len(again.model.classifier) == 7
    with torch.no_grad():
        assert torch.allclose(again.model(X), reference(X), atol=1e-5)


def test_backbone_with_separate_head_module() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = small_densenet()
            n = self.backbone.classifier.in_features
            self.backbone.classifier = nn.Identity()
            self.head = nn.Linear(n, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(x))

    reference = Net().eval()
    loaded = load_checkpoint(to_bytes(reference.state_dict()), device="cpu")
    with torch.no_grad():
        assert torch.allclose(loaded.model(X), reference(X), atol=1e-5)
    assert any("'head' module" in a for a in loaded.meta.assumed)


def _timm_file(model: nn.Module, ema: nn.Module, args: argparse.Namespace) -> dict:
    """What timm's train.py (CheckpointSaver) writes."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(X).sum().backward()
    opt.step()
    model.eval()
    return {"epoch": 4, "arch": "densenet121", "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
            "version": 2, "args": args, "state_dict_ema": ema.state_dict(), "metric": 71.2}


def test_timm_train_checkpoint_with_args_and_ema(monkeypatch: pytest.MonkeyPatch) -> None:
    model, ema = small_densenet(seed=1).train(), small_densenet(seed=2)
    data = to_bytes(_timm_file(model, ema, argparse.Namespace(model="densenet121", lr=0.1, epochs=10)))
    loaded = load_checkpoint(data, device="cpu")
    assert "timm train.py" in loaded.meta.family
    assert any("state_dict_ema" in a and "SEDENSENET_WEIGHTS=ema" in a for a in loaded.meta.assumed)
    with torch.no_grad():
        assert torch.allclose(loaded.model(X), model.eval()(X), atol=1e-5)
        assert torch.allclose(load_checkpoint(data, device="cpu", ema=True).model(X), ema(X), atol=1e-5)
        monkeypatch.setenv("SEDENSENET_WEIGHTS", "ema")
        from_env = load_checkpoint(data, device="cpu")
        assert torch.allclose(from_env.model(X), ema(X), atol=1e-5)
    assert "'state_dict_ema'" in from_env.meta.family


def test_only_argparse_namespace_is_allowed_through() -> None:
    args = argparse.Namespace(model="densenet121", output=pathlib.PurePosixPath("/tmp/out"))
    data = to_bytes(_timm_file(small_densenet().train(), small_densenet(), args))
    with pytest.raises(CheckpointError, match=r"pickled Python objects \(pathlib"):
        load_checkpoint(data, device="cpu")


def test_lightning_checkpoint() -> None:
    class Module(nn.Module):  # a LightningModule holding the DenseNet as self.model, plus a loss with a buffer
        def __init__(self) -> None:
            super().__init__()
            self.model = small_densenet()
            self.loss = nn.CrossEntropyLoss(weight=torch.ones(5))

    module = Module()
    data = to_bytes({"epoch": 2, "global_step": 40, "pytorch-lightning_version": "2.4.0",
                     "state_dict": module.state_dict(), "loops": {"fit_loop": {"epoch_progress": {"current": 2}}},
                     "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
                     "hyper_parameters": {"lr": 0.01, "num_classes": 5}})
    loaded = load_checkpoint(data, device="cpu")
    assert "Lightning" in loaded.meta.family
    with torch.no_grad():
        assert torch.allclose(loaded.model(X), module.model(X), atol=1e-5)


@pytest.mark.parametrize("entry", ["model_state_dict", "model", "ema"])
def test_dict_wrappers(entry: str) -> None:
    reference = small_densenet()
    extra = {"optimizer_state_dict": torch.optim.Adam(reference.parameters()).state_dict(), "epoch": 9}
    loaded = load_checkpoint(to_bytes({entry: reference.state_dict(), **extra}), device="cpu")
    with torch.no_grad():
        assert torch.allclose(loaded.model(X), reference(X), atol=1e-5)
    assert entry in loaded.meta.family


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_safetensors_and_half_precision(dtype: torch.dtype, tmp_path: Path) -> None:
    reference = small_densenet()
    half = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in reference.state_dict().items()}
    reference.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    path = tmp_path / "model.safetensors"
    path.write_bytes(save_safetensors(half))
    for source in (path, to_bytes(half)):
        loaded = load_checkpoint(source, device="cpu")
        assert next(loaded.model.parameters()).dtype == torch.float32
        with torch.no_grad():
            assert torch.allclose(loaded.model(X), reference(X), atol=1e-4)
        assert any("cast to float32" in a for a in loaded.meta.assumed)
    assert load_checkpoint(path, device="cpu").meta.family.startswith("safetensors")


def test_torchscript_is_refused_with_what_to_do() -> None:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(small_densenet()), buf)
    with pytest.raises(CheckpointError, match=r"TorchScript archive.*torch\.jit\.load\(path\)\.state_dict\(\)"):
        load_checkpoint(buf.getvalue(), device="cpu")


def test_onnx_is_refused_with_what_to_do(tmp_path: Path) -> None:
    # The first bytes of a torch.onnx.export file: ir_version (field 1), producer_name "pytorch" (field 2) …
    header = b"\x08\x08\x12\x07pytorch\x1a\x052.4.0:\x9c\x01\n"
    (tmp_path / "model.onnx").write_bytes(header + bytes(200))
    for source in (tmp_path / "model.onnx", header + bytes(200)):
        with pytest.raises(CheckpointError, match=r"ONNX model: not supported.*torch\.save\(model\.state_dict"):
            load_checkpoint(source, device="cpu")


def test_tensorflow_checkpoint_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "weights"\nall_model_checkpoint_paths: "w"\n')
    (tmp_path / "weights.index").write_bytes(b"\x00\x00\x01\x02" * 20)
    for name in ("checkpoint", "weights.index"):
        with pytest.raises(CheckpointError, match=r"TensorFlow checkpoint \(what Keras save_weights\('x'\) writes"):
            load_checkpoint(tmp_path / name, device="cpu")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(CheckpointError, match="TensorFlow SavedModel: not supported"):
        load_checkpoint(tmp_path / "saved", device="cpu")


def test_whole_pickled_model_is_refused_with_what_to_do() -> None:
    with pytest.raises(CheckpointError,
                       match=r"torchvision\.models\.densenet\.DenseNet.*torch\.save\(model\.state_dict"):
        load_checkpoint(to_bytes(small_densenet()), device="cpu")


def test_unsupported_parts_are_named_not_dumped() -> None:
    state = small_densenet().state_dict()
    deep = {k: v for k, v in state.items() if not k.startswith("features.conv0")}
    for i, c in enumerate((3, 8, 8)):
        deep[f"features.conv0.{2 * i}.weight"] = torch.zeros(8 if i < 2 else 16, c, 3, 3)
    with pytest.raises(CheckpointError, match=r"deep stem of timm densenet\*d") as info:
        load_checkpoint(to_bytes(deep), device="cpu")
    assert "denselayer" not in str(info.value)  # names the part, no key dump
    resnet = {"conv1.weight": torch.zeros(8, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(8, 8, 1, 1),
              "fc.weight": torch.zeros(5, 8)}
    with pytest.raises(CheckpointError, match="a ResNet"):
        load_checkpoint(to_bytes(resnet), device="cpu")
    odd_head = dict(state)
    del odd_head["classifier.weight"], odd_head["classifier.bias"]
    odd_head["classifier.1.weight"] = torch.zeros(5, 32, 3, 3)
    with pytest.raises(CheckpointError, match=r"classifier\.1 has a weight of shape \(5, 32, 3, 3\)"):
        load_checkpoint(to_bytes(odd_head), device="cpu")


def test_info_names_the_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = nn.DataParallel(Wrapper("backbone", small_densenet())).eval()
    path = tmp_path / "ft.pth"
    torch.save({"model_state_dict": module.state_dict(), "optimizer_state_dict": {}}, path)
    assert cli_main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "'model_state_dict'" in out and "module.backbone." in out
