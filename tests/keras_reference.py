"""keras.applications-style DenseNets built with Keras 3 (torch backend) for parity tests of the Keras reader.

Layer names follow keras.applications.densenet exactly (``conv1_conv``, ``conv{b}_block{j}_{0,1,2}_…``,
``pool{b}_…``, ``bn``, ``predictions``); block counts and growth are parameters so tests stay small. ``se=True``
adds the course seed's SE after the last dense block (GAP → Dense(16, relu) → Dense(C, sigmoid) → multiply,
auto-named Dense layers), before the final ``bn``.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
from keras import layers

EPS = 1.001e-5


def conv_block(x, growth: int, name: str):
    x1 = layers.BatchNormalization(epsilon=EPS, name=name + "_0_bn")(x)
    x1 = layers.Activation("relu", name=name + "_0_relu")(x1)
    x1 = layers.Conv2D(4 * growth, 1, use_bias=False, name=name + "_1_conv")(x1)
    x1 = layers.BatchNormalization(epsilon=EPS, name=name + "_1_bn")(x1)
    x1 = layers.Activation("relu", name=name + "_1_relu")(x1)
    x1 = layers.Conv2D(growth, 3, padding="same", use_bias=False, name=name + "_2_conv")(x1)
    return layers.Concatenate(name=name + "_concat")([x, x1])


def transition_block(x, name: str):
    x = layers.BatchNormalization(epsilon=EPS, name=name + "_bn")(x)
    x = layers.Activation("relu", name=name + "_relu")(x)
    x = layers.Conv2D(int(x.shape[-1] * 0.5), 1, use_bias=False, name=name + "_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=name + "_pool")(x)


def seed_se(x, hidden: int = 16):
    """The course seed's SE: GAP → Dense(hidden, relu) → Dense(C, sigmoid) → multiply (auto-named Dense)."""
    c = x.shape[-1]
    s = layers.GlobalAveragePooling2D()(x)
    s = layers.Dense(hidden, activation="relu")(s)
    s = layers.Dense(c, activation="sigmoid")(s)
    s = layers.Reshape((1, 1, c))(s)
    return layers.Multiply()([x, s])


def densenet(blocks=(2, 2), growth: int = 8, init: int = 16, classes: int = 5, size: int = 48, se: bool = False,
             activation: str = "softmax") -> keras.Model:
    """A small keras.applications-style DenseNet (same layer names, fewer/narrower layers)."""
    inp = keras.Input((size, size, 3))
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(inp)
    x = layers.Conv2D(init, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for i, n in enumerate(blocks):
        for j in range(n):
            x = conv_block(x, growth, f"conv{i + 2}_block{j + 1}")
        if i < len(blocks) - 1:
            x = transition_block(x, f"pool{i + 2}")
    if se:
        x = seed_se(x)
    x = layers.BatchNormalization(epsilon=EPS, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(classes, activation=activation, name="predictions")(x)
    return keras.Model(inp, x)


def randomise(model: keras.Model, seed: int = 0) -> keras.Model:
    """Non-trivial weights everywhere, BatchNorm statistics included (fresh ones would hide mapping errors)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.3, c),
                               rng.uniform(0.3, 2.0, c)])
        elif isinstance(layer, layers.Dense) and layer.name != "predictions":
            layer.set_weights([w + rng.normal(0, 0.2, w.shape) for w in layer.get_weights()])
        elif layer.name == "predictions":
            layer.set_weights([rng.normal(0, 0.3, w.shape) for w in layer.get_weights()])
    return model


def predict(model: keras.Model, images_nchw: np.ndarray) -> np.ndarray:
    """Keras' own output for NCHW images (transposed to Keras' NHWC)."""
    x = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1)).astype("float32")
    return keras.ops.convert_to_numpy(model(x, training=False))
