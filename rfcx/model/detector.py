"""The detector: waveform in, 24 species scores out, with augmentation and the log-mel front end inside the graph.

Putting augmentation and the spectrogram in the model means they run batched on the accelerator during training and
vanish at inference (every augmentation layer is the identity when training is false), and a saved `.keras` file
takes raw audio, so prediction cannot drift from training's preprocessing. Reads top to bottom:
waveform -> [waveform augmentations] -> mel power -> [power augmentations] -> dB -> [spectrogram augmentations]
-> [per-band background floor subtracted] -> [noise gate] -> min-max (or fixed) scale
-> [frequency coordinate channel] -> backbone -> head.

Two heads: `reference` (global average pooling and a dense classifier, as in the reference recipe) and `sed`
(frame-wise sound event detection: the backbone's feature map averaged over frequency gives one score per species
and time frame, `frame_scores`, pooled over time into the clip score by max or attention). Either way the detector's
one output, `species`, is (batch, 24) clip scores, which is what prediction, ensembling and detection read; the
frame scores feed the masked frame-wise loss during training only (`training_model`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from rfcx.constants import N_SPECIES
from rfcx.model.augment import AugmentationStages
from rfcx.data.audio import samples
from rfcx.model.backbones import BACKBONES
from rfcx.model.features import BandFloor, FrequencyChannel, LogMelSpectrogram, MelPowerImage, MinMaxScale, NoiseGate
from rfcx.model.losses import FrameLoss
from rfcx.model.recipe import Recipe


def build_front_end(features: dict[str, Any], augment: keras.layers.Layer | None = None) -> LogMelSpectrogram:
    """The log-mel layer configured as in the reference recipe (n_fft, hop, fmin, fmax from config), with the power
    stage of the augmentations (``AugmentationStages.power``) inside it, if any."""
    return LogMelSpectrogram(sample_rate=features["sample_rate"], n_fft=features["n_fft"],
                             hop_length=features["hop_length"], fmin=features["fmin"], fmax=features["fmax"],
                             n_mels=features["n_mels"], frames=features["frames"], top_db=features["top_db"],
                             augment=augment, dtype="float32", name="log_mel")


def band_floor(features: dict[str, Any], name: str | None = None) -> BandFloor | None:
    """The configured per-band background-floor layer, or None when ``features.band_floor_quantile`` is 0 (off)."""
    quantile = features["band_floor_quantile"]
    return BandFloor(quantile, name=name) if quantile else None


def noise_gate(features: dict[str, Any], name: str | None = None) -> NoiseGate | None:
    """The configured noise gate above each band's floor, or None when ``features.noise_gate_db`` is 0 (off)."""
    gate_db = features["noise_gate_db"]
    return NoiseGate(gate_db, name=name) if gate_db else None


def scale_image(db: keras.KerasTensor, features: dict[str, Any]) -> keras.KerasTensor:
    """The dB image as the backbone sees it: each band's background floor subtracted and what stays within
    ``noise_gate_db`` of it blanked (if configured), then scaled. Not augmentations: always applied.

    ``features.scaling`` "minmax" stretches each example to [0, 1] (the reference). "fixed" divides by
    ``features.scale_db`` instead, the same for every window (and, without a band floor, shifts the image so its
    floor, -top_db, maps to 0): a window of background alone then stays a flat, faint image, where min-max would
    stretch its faint noise to full contrast and the detector would see calls in it (on the demo's test
    recordings, four windows in five hold no call). ``scale_db`` should be about a call's height above the floor,
    so the image has the same order of magnitude as the [0, 1] frequency channel beside it.
    """
    floor = band_floor(features, name="band_floor")
    if floor is not None:
        db = floor(db)
        gate = noise_gate(features, name="noise_gate")  # the schema allows a gate only with a band floor
        if gate is not None:
            db = gate(db)
    if features["scaling"] == "fixed":
        offset = 0.0 if floor is not None else features["top_db"] / features["scale_db"]
        return keras.layers.Rescaling(1.0 / features["scale_db"], offset=offset, dtype="float32",
                                      name="fixed_scale")(db)
    return MinMaxScale(dtype="float32", name="min_max")(db)


def build_backbone(name: str, input_shape: tuple[int | None, int | None, int]) -> keras.Model:
    """An image backbone (rfcx.model.backbones), randomly initialised (weights=None: nothing is downloaded)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](include_top=False, weights=None, input_shape=input_shape)


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


@keras.saving.register_keras_serializable(package="rfcx")
class ClipPooling(keras.layers.Layer):
    """Clip scores (batch, C) from frame scores (batch, T, C): max over time, or attention pooling
    (sum over t of softmax_t(attention logits) * frame score, the PANNs / SED-notebook head)."""

    def __init__(self, mode: str = "max", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in ("max", "attention"):
            raise ValueError(f"ClipPooling: mode must be max or attention, got {mode!r}")
        self.mode = mode

    def call(self, inputs: Any) -> Any:
        if self.mode == "max":
            return keras.ops.max(inputs, axis=1)
        frame_scores, attention = inputs
        weights = keras.ops.softmax(keras.ops.cast(attention, "float32"), axis=1)
        return keras.ops.sum(weights * frame_scores, axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = input_shape if self.mode == "max" else input_shape[0]
        return (shape[0], shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


def sed_head(x: keras.KerasTensor, model: dict[str, Any]) -> keras.KerasTensor:
    """Mean over frequency -> Dropout -> per-frame Dense(units, relu) -> Dropout -> per-frame sigmoid scores
    `frame_scores` (batch, T, 24) -> clip scores `species` (batch, 24) by max or attention pooling over time."""
    if model["output"] != "sigmoid":
        raise ValueError("the sed head needs model.output: sigmoid (frame scores are independent per species)")
    _, n_freq, n_time, channels = x.shape
    x = keras.layers.AveragePooling2D(pool_size=(n_freq, 1), name="frequency_mean")(x)
    x = keras.layers.Reshape((n_time, channels), name="frames")(x)
    x = keras.layers.Dropout(model["dropout"], name="head_dropout1")(x)
    x = keras.layers.Dense(model["dense_units"], activation="relu", kernel_initializer="he_normal",
                           name="head_dense")(x)
    x = keras.layers.Dropout(model["dropout"], name="head_dropout2")(x)
    frames = keras.layers.Dense(N_SPECIES, activation="sigmoid", dtype="float32", name="frame_scores",
                                bias_initializer=output_bias(model))(x)
    if model["sed_pooling"] == "max":
        return ClipPooling("max", name="species")(frames)
    attention = keras.layers.Dense(N_SPECIES, dtype="float32", name="frame_attention")(x)
    return ClipPooling("attention", name="species")([frames, attention])


def training_model(detector: keras.Model, frame_loss_weight: float = 1.0, from_mel_power: bool = False) -> keras.Model:
    """The model `fit` trains, sharing every weight with the detector (training it trains the detector): the detector
    itself, or the same layers with other inputs. For the sed head a second input, `frame_targets` (batch, T, 24),
    whose masked frame-wise loss is added to the clip loss. With `from_mel_power`, inputs `power` and `signal_power`
    (``rfcx.data.mel_cache``) replace the waveform: the log-mel layer's STFT is skipped, the rest runs as in the
    detector (``MelPowerImage``)."""
    names = {layer.name for layer in detector.layers}
    frames = detector.get_layer("frame_scores").output if "frame_scores" in names else None
    if not from_mel_power and frames is None:
        return detector
    inputs, outputs = {"waveform": detector.input}, [detector.output] + ([frames] if frames is not None else [])
    if from_mel_power:
        log_mel = detector.get_layer("log_mel")
        after_stft = keras.Model(log_mel.output, outputs, name="after_stft")
        power = keras.Input((log_mel.native_frames(detector.input.shape[-1]), log_mel.n_mels), name="power")
        signal_power = keras.Input((1,), name="signal_power")
        outputs = after_stft(MelPowerImage(log_mel, name="mel_power_image")([power, signal_power]))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        inputs = {"power": power, "signal_power": signal_power}
    if frames is None:
        return keras.Model(inputs, outputs[0], name=detector.name)
    targets = keras.Input(tuple(frames.shape[1:]), name="frame_targets", dtype="float32")
    scores = FrameLoss(frame_loss_weight, name="frame_loss")([outputs[0], outputs[1], targets])
    return keras.Model({**inputs, "frame_targets": targets}, scores, name=detector.name)


def frame_count(detector: keras.Model) -> int:
    """Time frames of the sed head's frame scores (0 for the reference head)."""
    names = {layer.name for layer in detector.layers}
    return int(detector.get_layer("frame_scores").output.shape[1]) if "frame_scores" in names else 0


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


def zero_init_residual_branches(network: keras.Model) -> None:
    """Start every residual block as the identity: zero the gamma of the BatchNorm that ends each residual branch
    (the last input of each Add, as keras.applications builds them). From scratch, the signal then passes through
    the shortcuts untouched at first, which lets a short run train deep ResNets at a higher learning rate
    (Goyal et al. 2017, "Accurate, large minibatch SGD", section 5.1)."""
    for layer in network.layers:
        if isinstance(layer, keras.layers.Add):
            branch = layer.input[-1]._keras_history.operation
            if isinstance(branch, keras.layers.BatchNormalization) and branch.gamma is not None:
                branch.gamma.assign(keras.ops.zeros(branch.gamma.shape, dtype=branch.gamma.dtype))


def build_model(features: dict[str, Any], model: dict[str, Any], window_seconds: float,
                augmentations: AugmentationStages | None = None) -> keras.Model:
    """The whole detector as one functional Keras model taking (batch, samples) float32 audio."""
    waveform = keras.Input((samples(window_seconds, features["sample_rate"]),), name="waveform", dtype="float32")
    x = waveform
    if augmentations is not None and augmentations.waveform is not None:
        x = augmentations.waveform(x)
    x = build_front_end(features, augmentations.power if augmentations is not None else None)(x)
    if augmentations is not None and augmentations.spectrogram is not None:
        x = augmentations.spectrogram(x)
    x = scale_image(x, features)
    if model["frequency_channel"]:
        x = FrequencyChannel(name="frequency_channel")(x)
    # any image size: the same backbone also runs on the low-resolution images of train.low_res_epochs
    backbone = build_backbone(model["backbone"], (None, None, x.shape[-1]))
    set_batchnorm_momentum(backbone, model["bn_momentum"])
    if model["zero_init_residual"]:
        zero_init_residual_branches(backbone)
    head = sed_head if model["head"] == "sed" else reference_head
    scores = head(backbone(x), model)
    return keras.Model(waveform, scores, name=f"rfcx_{model['backbone']}")


def recipe_detector(recipe: Recipe, model: dict[str, Any]) -> keras.Model:
    """The detector a training recipe trains: its window, front end and in-model augmentation stages."""
    return build_model(dict(recipe.features), model, recipe.geometry.window_seconds, recipe.augmentations)


def low_resolution_detector(detector: keras.Model, factor: tuple[int, int]) -> keras.Model:
    """The detector's own layers, with the image average-pooled by `factor` (mel bands, frames) before the backbone: the
    model `train.low_res_epochs` trains first (progressive resizing). Every weight is shared, so training it trains
    the detector; on a CPU a ResNet50 step at half the height and width costs about half a full one.

    Only the reference head is size-agnostic (global average pooling); the sed head's frequency mean is sized for
    the full image. The front end up to the backbone and the head after it are chains of single-input layers, which
    are called again here in order.
    """
    if frame_count(detector):
        raise ValueError("train.low_res_epochs needs model.head: reference (the sed head's pooling is sized for "
                         "the full image)")
    layers = detector.layers
    at = next(index for index, layer in enumerate(layers) if isinstance(layer, keras.Model))
    image = layers[at - 1].output
    x = keras.layers.AveragePooling2D(tuple(factor), padding="same", name="low_resolution")(image)
    x = layers[at](x)
    for layer in layers[at + 1:]:
        x = layer(x)
    return keras.Model(detector.input, x, name=f"{detector.name}_low_res")


def load_detector(path: str | Path) -> keras.Model:
    """Load a saved detector without executing code from the file (safe_mode: no Lambda layers are allowed). Its
    layers are rfcx's own, registered with Keras when this module (and those it imports) load, so prediction and
    detection read a model through here without loading the training code."""
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)
