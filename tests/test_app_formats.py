"""The app loads every checkpoint family: by upload (Keras, safetensors, wrapped multi-label fine-tunes) and from a
``--models`` folder, with multi-label models shown as independent sigmoid scores."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import streamlit as st
import torch
from safetensors.torch import save as save_safetensors
from seed_reference import randomise_bn
from streamlit.testing.v1 import AppTest
from torch import nn
from torchvision.models.densenet import DenseNet

from sedensenet.app.sidebar import UPLOAD_TYPES, _families

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
pytestmark = pytest.mark.slow  # each case runs the whole Explore page on a freshly loaded model


def multilabel_bytes() -> bytes:
    """A CheXNet-style file: DataParallel prefix, ``densenet121.`` attribute, Sequential(Linear, Sigmoid) head."""
    net = randomise_bn(DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, num_classes=4)).eval()
    net.classifier = nn.Sequential(nn.Linear(net.classifier.in_features, 4), nn.Sigmoid())
    buf = io.BytesIO()
    torch.save({"state_dict": {f"module.densenet121.{k}": v for k, v in net.state_dict().items()}}, buf)
    return buf.getvalue()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.delenv("SEDENSENET_MODELS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", ["seed.h5", "multilabel.pth.tar", "model.safetensors"])
def test_upload_of_each_family_loads(app: AppTest, name: str) -> None:
    assert {"h5", "keras", "safetensors", "pt", "pth", "tar", "ckpt"} <= set(UPLOAD_TYPES)
    if name == "seed.h5":
        data = (FIXTURES / "keras2_densenet_se.h5").read_bytes()
    elif name == "model.safetensors":
        net = randomise_bn(DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, num_classes=3))
        data = save_safetensors({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    else:
        data = multilabel_bytes()
    app.sidebar.file_uploader(key="w_ckpt_upload").set_value((name, data, "application/octet-stream")).run()
    _ok(app)
    assert app.session_state["family"].startswith("upload:")
    multilabel = any("independent sigmoid scores" in c.value for c in app.sidebar.caption)
    assert multilabel == name.startswith("multilabel")


def test_models_folder_accepts_every_extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(FIXTURES / "keras2_densenet_se.h5", folder / "seed-se.h5")
    (folder / "chexnet.pth.tar").write_bytes(multilabel_bytes())
    (folder / "notes.txt").write_text("not a model")
    names = {f.label for f in _families(folder, "mine")}
    assert names == {"seed (mine)", "chexnet (mine)"}
    monkeypatch.setenv("SEDENSENET_MODELS", str(folder))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    for key in ("mine:seed", "mine:chexnet"):
        at.sidebar.selectbox(key="family").set_value(key).run()
        _ok(at)
