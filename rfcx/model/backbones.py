"""Image backbones, randomly initialised (weights=None: nothing is downloaded, everything trains from scratch).

ResNet50, EfficientNetB0 and MobileNetV3Small come from keras.applications. ResNet18 (He et al. 2016, table 1: basic
two-convolution blocks, [2, 2, 2, 2] per stage) is not in keras.applications and is built here with the same stem,
layer naming (`conv{stage}_block{n}_...`) and BatchNorm epsilon as its ResNet50, so every choice that acts on a
backbone's layers (BatchNorm momentum, zero-initialised residual branches) applies to it unchanged. It is the light
choice: ~11 M parameters, under half the multiply-adds of ResNet50 on the same image, and 69 layers to its 175;
layers are what tracing a training graph costs on a CPU (the tests' tiny workflow runs use it for that reason).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

_BN_EPSILON = 1.001e-5  # as keras.applications' ResNets


def _conv_bn(x: keras.KerasTensor, filters: int, kernel: int, stride: int, name: str) -> keras.KerasTensor:
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_bn")(x)


def _basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str) -> keras.KerasTensor:
    """Two 3x3 convolutions plus the shortcut (a strided 1x1 projection where the shape changes). The branch ends in
    its BatchNorm, the last input of the Add, which is what `zero_init_residual_branches` zeroes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_0")
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(_conv_bn(x, filters, 3, stride, f"{name}_1"))
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    return keras.layers.Activation("relu", name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet18(include_top: bool = False, weights: None = None,
             input_shape: tuple[int, int, int] | None = None) -> keras.Model:
    """ResNet18 without its classifier, in keras.applications' calling convention (only include_top=False and
    weights=None are supported: the detector has its own head and trains from scratch)."""
    if include_top or weights is not None:
        raise ValueError("resnet18 is built without a top and without pretrained weights")
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = keras.layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, filters in enumerate((64, 128, 256, 512), start=2):
        for block in (1, 2):
            x = _basic_block(x, filters, 2 if block == 1 and stage > 2 else 1, f"conv{stage}_block{block}")
    return keras.Model(inputs, x, name="resnet18")


#: Every backbone the config may name (workflow/schemas/config.schema.yaml lists the same).
BACKBONES: dict[str, Callable[..., keras.Model]] = {
    "resnet50": keras.applications.ResNet50,
    "resnet18": resnet18,
    "efficientnetb0": keras.applications.EfficientNetB0,
    "mobilenetv3small": keras.applications.MobileNetV3Small,
}
