"""The detector: waveform in, 24 species scores out, with augmentation and the log-mel front end inside the graph.

Putting augmentation and the spectrogram in the model means they run batched on the accelerator during training and
vanish at inference (every augmentation layer is the identity when training is false), and a saved `.keras` file
takes raw audio, so prediction cannot drift from training's preprocessing. Reads top to bottom:
waveform -> [waveform augmentations] -> log-mel (dB) -> [spectrogram augmentations] -> min-max scale
-> [frequency coordinate channel] -> backbone -> head.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from rfcx.augment import AugmentationStages
from rfcx.constants import N_SPECIES
from rfcx.features import FrequencyChannel, LogMelSpectrogram, MinMaxScale

_BACKBONES = {
    "resnet50": keras.applications.ResNet50,
    "efficientnetb0": keras.applications.EfficientNetB0,
    "mobilenetv3small": keras.applications.MobileNetV3Small,
}


def window_samples(features: dict[str, Any], window_seconds: float) -> int:
    """Samples in one model input window."""
    return int(round(window_seconds * features["sample_rate"]))


def build_front_end(features: dict[str, Any]) -> LogMelSpectrogram:
    """The log-mel layer configured as in the reference recipe (n_fft, hop, fmin, fmax from config)."""
    return LogMelSpectrogram(sample_rate=features["sample_rate"], n_fft=features["n_fft"],
                             hop_length=features["hop_length"], fmin=features["fmin"], fmax=features["fmax"],
                             n_mels=features["n_mels"], frames=features["frames"], top_db=features["top_db"],
                             dtype="float32", name="log_mel")


def build_backbone(name: str, input_shape: tuple[int, int, int]) -> keras.Model:
    """An image backbone from keras.applications, randomly initialised (weights=None: nothing is downloaded)."""
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_BACKBONES)}")
    return _BACKBONES[name](include_top=False, weights=None, input_shape=input_shape)


def reference_head(x: keras.KerasTensor, model: dict[str, Any]) -> keras.KerasTensor:
    """GAP -> BN -> Dropout -> Dense(units, relu, he_normal) -> BN -> Dropout -> Dense(24), as in the reference.

    The output layer runs in float32 even under mixed precision, so probabilities and the loss stay accurate.
    """
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.BatchNormalization(momentum=model["bn_momentum"], name="head_bn1")(x)
    x = keras.layers.Dropout(model["dropout"], name="head_dropout1")(x)
    x = keras.layers.Dense(model["dense_units"], activation="relu", kernel_initializer="he_normal",
                           name="head_dense")(x)
    x = keras.layers.BatchNormalization(momentum=model["bn_momentum"], name="head_bn2")(x)
    x = keras.layers.Dropout(model["dropout"], name="head_dropout2")(x)
    return keras.layers.Dense(N_SPECIES, activation=model["output"], dtype="float32", name="species",
                              bias_initializer=output_bias(model))(x)


def output_bias(model: dict[str, Any]) -> keras.initializers.Initializer:
    """Start sigmoid outputs at the prior of a species being present (about 1 in 24) instead of 0.5, so the first
    steps learn which species rather than unlearning that every species is half-present; softmax starts uniform."""
    if model["output"] != "sigmoid":
        return keras.initializers.Zeros()
    prior = model["initial_prior"]
    return keras.initializers.Constant(math.log(prior / (1 - prior)))


def set_batchnorm_momentum(network: keras.Model, momentum: float) -> None:
    """BatchNorm momentum of every layer. keras.applications uses 0.99, whose moving statistics need several
    hundred steps to settle; a short run (a few hundred steps, as on a laptop) evaluates with unsettled statistics
    and scores near chance, so the config chooses it."""
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def build_model(features: dict[str, Any], model: dict[str, Any], window_seconds: float,
                augmentations: AugmentationStages | None = None) -> keras.Model:
    """The whole detector as one functional Keras model taking (batch, samples) float32 audio."""
    waveform = keras.Input((window_samples(features, window_seconds),), name="waveform", dtype="float32")
    x = waveform
    if augmentations is not None and augmentations.waveform is not None:
        x = augmentations.waveform(x)
    x = build_front_end(features)(x)
    if augmentations is not None and augmentations.spectrogram is not None:
        x = augmentations.spectrogram(x)
    x = MinMaxScale(dtype="float32", name="min_max")(x)
    if model["frequency_channel"]:
        x = FrequencyChannel(name="frequency_channel")(x)
    backbone = build_backbone(model["backbone"], (features["n_mels"], features["frames"], x.shape[-1]))
    set_batchnorm_momentum(backbone, model["bn_momentum"])
    scores = reference_head(backbone(x), model)
    return keras.Model(waveform, scores, name=f"rfcx_{model['backbone']}")
