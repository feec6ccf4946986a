"""Make the tf.keras 2 legacy ``.h5`` fixtures (run once; the outputs are committed under tests/fixtures/).

tf.keras 2 names the stem ``conv1/conv`` (a ``/`` in the layer name), which Keras 3 no longer writes, so the
fixtures come from tf.keras itself — TensorFlow 2.15 in a throwaway environment, never a project dependency:

    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install "tensorflow-cpu<2.16"
    /tmp/tfvenv/bin/python tools/make_keras_legacy_fixture.py

The model is keras.applications' DenseNet (its own ``conv_block``/``transition_block`` and stem names) made tiny:
growth 8, blocks (1, 2, 1, 1), 16 stem filters, 32×32 input, 3 classes, with the course seed's SE (GAP →
Dense(16, relu) → Dense(C, sigmoid) → multiply before ``bn``); the plain model is covered by Keras 3 tests.
Weights and BatchNorm statistics are random; tf.keras' own outputs on fixed inputs are stored beside the file
for the parity test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from keras.src.applications import densenet as kd  # tf.keras 2.15's keras.applications implementation

layers = tf.keras.layers
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def build(se: bool) -> tf.keras.Model:
    inp = layers.Input((32, 32, 3))
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(inp)
    x = layers.Conv2D(16, 7, strides=2, use_bias=False, name="conv1/conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="conv1/bn")(x)
    x = layers.Activation("relu", name="conv1/relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for b, n in enumerate((1, 2, 1, 1), start=2):
        for j in range(1, n + 1):
            x = kd.conv_block(x, 8, name=f"conv{b}_block{j}")
        if b < 5:
            x = kd.transition_block(x, 0.5, name=f"pool{b}")
    if se:
        c = x.shape[-1]
        s = layers.GlobalAveragePooling2D()(x)
        s = layers.Dense(16, activation="relu")(s)
        s = layers.Dense(c, activation="sigmoid")(s)
        s = layers.Reshape((1, 1, c))(s)
        x = layers.Multiply()([x, s])
    x = layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(3, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, x, name="densenet")


def randomise(model: tf.keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, layers.BatchNormalization):
            c = weights[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.3, c),
                               rng.uniform(0.3, 2.0, c)])
        elif isinstance(layer, layers.Dense):
            layer.set_weights([w + rng.normal(0, 0.3, w.shape) for w in weights])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for se in (True,):
        rng = np.random.default_rng(7)
        model = build(se)
        randomise(model, rng)
        name = f"keras2_densenet_{'se' if se else 'plain'}"
        model.save(OUT / f"{name}.h5", save_format="h5")
        images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
        np.savez(OUT / f"{name}.npz", images_nhwc=images, probs=model(images, training=False).numpy(),
                 tensorflow=tf.__version__)
        print(name, (OUT / f"{name}.h5").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
