"""Keras DenseNets (.keras, .weights.h5, legacy .h5) read with h5py: probabilities equal Keras' own.

Keras 3 runs on its torch backend here (a dev dependency); the tf.keras 2 legacy file is a committed fixture
made by tools/make_keras_legacy_fixture.py with TensorFlow 2.15, with tf.keras' own outputs stored beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")
import keras_reference as kr  # noqa: E402

from sedensenet import CheckpointError, load_checkpoint  # noqa: E402
from sedensenet.analysis.capture import capture_excitations  # noqa: E402
from sedensenet.cli.main import main as cli_main  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def images(size: int, n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, size, size)).astype("float32")


def probs(path: Path | bytes, x: np.ndarray) -> tuple[np.ndarray, object]:
    loaded = load_checkpoint(path, device="cpu")
    return capture_excitations(loaded.model, torch.from_numpy(x)).probs.numpy(), loaded


def save(model: keras.Model, path: Path) -> Path:
    if path.name.endswith(".weights.h5"):
        model.save_weights(path)
    else:
        model.save(path)
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("se", [True, False])
@pytest.mark.parametrize("filename", ["model.keras", "model.weights.h5", "legacy.h5"])
def test_keras3_files_give_keras_probabilities(se: bool, filename: str, tmp_path: Path) -> None:
    model = kr.randomise(kr.densenet(blocks=(2, 3, 2), se=se, size=45))  # odd size: pooling floors alike
    x = images(45)
    expected = kr.predict(model, x)
    got, loaded = probs(save(model, tmp_path / filename), x)
    assert np.abs(got - expected).max() <= 1e-4
    cfg = loaded.config
    assert cfg.block_config == (2, 3, 2) and cfg.growth_rate == 8 and cfg.num_init_features == 16
    assert cfg.se == ("final" if se else "none")
    if se:
        assert cfg.se_bias and loaded.model.features.se3.fc[0].out_features == 16
        assert "SE after dense block 3" in loaded.meta.family
    assert loaded.meta.head_activation == "softmax"
    if filename != "model.weights.h5":  # the config knows the input size; a bare weights file does not
        assert loaded.meta.input_size == 45


def test_batchnorm_epsilon_is_folded_exactly(tmp_path: Path) -> None:
    """Keras' eps 1.001e-5 vs torch's 1e-5 matters when variances are tiny: fold it into running_var."""
    model = kr.densenet(blocks=(1, 1), se=False, size=32)
    kr.randomise(model)
    bn = model.get_layer("bn")
    gamma, beta, mean, _ = bn.get_weights()
    bn.set_weights([gamma, beta, mean, np.full_like(gamma, 2e-6)])
    x = images(32)
    got, loaded = probs(save(model, tmp_path / "m.keras"), x)
    assert np.abs(got - kr.predict(model, x)).max() <= 1e-4
    assert torch.allclose(loaded.model.features.norm5.running_var, torch.full_like(torch.from_numpy(gamma),
                                                                               2e-6 + 1e-8))


def test_sigmoid_classifier_is_multilabel(tmp_path: Path) -> None:
    model = kr.randomise(kr.densenet(blocks=(1, 1), activation="sigmoid", size=32))
    x = images(32)
    got, loaded = probs(save(model, tmp_path / "m.keras"), x)
    assert loaded.meta.head_activation == "sigmoid"
    assert np.abs(got - kr.predict(model, x)).max() <= 1e-4


@pytest.mark.slow
def test_keras_applications_densenet121_naming(tmp_path: Path) -> None:
    model = keras.applications.DenseNet121(weights=None, input_shape=(64, 64, 3), classes=4)
    kr.randomise(model)
    x = images(64, n=1)
    got, loaded = probs(save(model, tmp_path / "d121.keras"), x)
    assert loaded.config.arch == "densenet121" and loaded.config.block_config == (6, 12, 24, 16)
    assert np.abs(got - kr.predict(model, x)).max() <= 1e-4


def test_tf_keras2_legacy_fixture_gives_tf_probabilities() -> None:
    ref = np.load(FIXTURES / "keras2_densenet_se.npz")
    x = np.ascontiguousarray(ref["images_nhwc"].transpose(0, 3, 1, 2))
    got, loaded = probs(FIXTURES / "keras2_densenet_se.h5", x)
    assert np.abs(got - ref["probs"]).max() <= 1e-4
    assert "tf.keras 2 layer names" in loaded.meta.family
    assert loaded.config.block_config == (1, 2, 1, 1) and loaded.config.se == "final"
    assert loaded.config.se_hidden == 16 or loaded.model.features.se4.fc[0].out_features == 16


def test_convert_and_info_name_the_keras_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "seed.pt"
    assert cli_main(["convert", str(FIXTURES / "keras2_densenet_se.h5"), str(out)]) == 0
    assert cli_main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "converted from legacy Keras HDF5 (tf.keras 2 layer names)" in text
    ref = np.load(FIXTURES / "keras2_densenet_se.npz")
    got, _ = probs(out, np.ascontiguousarray(ref["images_nhwc"].transpose(0, 3, 1, 2)))
    assert np.abs(got - ref["probs"]).max() <= 1e-4


def test_unsupported_keras_files_name_the_part(tmp_path: Path) -> None:
    no_top = kr.densenet(blocks=(1, 1), size=32)
    features = keras.Model(no_top.input, no_top.get_layer("relu").output)
    with pytest.raises(CheckpointError, match=r"no classifier Dense layer \(saved with include_top=False\?\)"):
        load_checkpoint(save(features, tmp_path / "features.keras"), device="cpu")
    base = kr.densenet(blocks=(1, 1), size=32)
    h = keras.layers.Dense(32, activation="relu")(base.get_layer("avg_pool").output)
    custom = keras.Model(base.input, keras.layers.Dense(3, activation="softmax")(h))
    with pytest.raises(CheckpointError, match="custom Dense heads are not"):
        load_checkpoint(save(custom, tmp_path / "custom.keras"), device="cpu")
    inp = keras.Input((16, 16, 3))
    cnn = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inp))))
    with pytest.raises(CheckpointError, match="no keras.applications-style DenseNet layers"):
        load_checkpoint(save(cnn, tmp_path / "cnn.h5"), device="cpu")


def test_damaged_and_hostile_keras_files_get_one_message(tmp_path: Path) -> None:
    import h5py

    good = (FIXTURES / "keras2_densenet_se.h5").read_bytes()
    with pytest.raises(CheckpointError, match="this Keras file is damaged or unreadable"):
        load_checkpoint(good[: len(good) // 2], device="cpu")
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:  # a tiny file claiming a 4 GiB compressed kernel
        f.attrs["layer_names"] = [b"conv1_conv"]
        g = f.create_group("conv1_conv")
        g.attrs["weight_names"] = [b"conv1_conv/kernel"]
        g.create_dataset("conv1_conv/kernel", shape=(2**15, 2**15), dtype="float32", compression="gzip",
                         chunks=(1024, 1024), fillvalue=0.0)
    assert path.stat().st_size < 100_000
    with pytest.raises(CheckpointError, match="claims 4096 MiB: not a DenseNet weight"):
        load_checkpoint(path, device="cpu")
    with h5py.File(tmp_path / "missing.h5", "w") as f:
        f.attrs["layer_names"] = [b"conv1_conv", b"gone"]
        f.create_group("conv1_conv").attrs["weight_names"] = []
    with pytest.raises(CheckpointError, match="this Keras file is damaged or unreadable"):
        load_checkpoint(tmp_path / "missing.h5", device="cpu")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("se", [True, False])
def test_weights_file_without_layer_names_is_read_by_order(se: bool, tmp_path: Path) -> None:
    """Older Keras 3 wrote only ``layers/<class>_<n>/vars/<i>``: names come from the order of the variables."""
    import h5py

    # growth 8, 4 layers on 32 stem channels: the transition gives 64 / 2 = 32 = 4k channels, like a bottleneck
    model = kr.randomise(kr.densenet(blocks=(4, 3, 2), growth=8, init=32, se=se, size=40))
    path = save(model, tmp_path / "old.weights.h5")
    with h5py.File(path, "r+") as f:
        for group in f["layers"].values():
            if "vars" in group and "name" in group["vars"].attrs:
                del group["vars"].attrs["name"]
    x = images(40)
    got, loaded = probs(path, x)
    assert np.abs(got - kr.predict(model, x)).max() <= 1e-4
    assert "named from their order" in loaded.meta.family
    assert loaded.config.block_config == (4, 3, 2)
