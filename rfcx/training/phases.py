"""The fits of one fold's run: the optimizer with its learning-rate schedule, and the optional low-resolution phase.

Every phase trains the detector's own weights through a training model that shares them (rfcx.model.detector), and
continues the same optimizer, so its moments and schedule run on across phases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from rfcx.model.detector import low_resolution_detector, training_model
from rfcx.model.losses import MaskedBinaryCrossentropy, MaskedCategoricalCrossentropy
from rfcx.model.metrics import LWLRAP


def learning_rate(train: dict[str, Any], steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The configured schedule over the whole run: cosine with linear warm-up, step, or constant."""
    peak = train["learning_rate"]
    total = max(train["epochs"] * steps_per_epoch, 1)
    if train["schedule"] == "constant":
        return peak
    if train["schedule"] == "step":
        boundaries = [int(total * 0.6), int(total * 0.85)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, [peak, peak * 0.1, peak * 0.01])
    warmup = min(int(train["warmup_epochs"] * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * 0.1 if warmup else peak, decay_steps=total - warmup, alpha=0.01,
        warmup_target=peak if warmup else None, warmup_steps=warmup)


def compile_model(model: keras.Model, config: dict[str, Any], steps_per_epoch: int,
                  optimizer: keras.optimizers.Optimizer | None = None) -> keras.optimizers.Optimizer:
    """Adam, the masked loss matching the output (sigmoid: binary, softmax: categorical), LWLRAP as the metric.
    Pass the `optimizer` of an earlier phase of the same run (`training_phases`) to continue its moments and its
    learning-rate schedule (which counts the optimizer's iterations); returns the optimizer."""
    loss = MaskedBinaryCrossentropy() if config["model"]["output"] == "sigmoid" else MaskedCategoricalCrossentropy()
    ema = config["train"]["ema_momentum"]
    optimizer = optimizer or keras.optimizers.Adam(learning_rate(config["train"], steps_per_epoch),
                                                   use_ema=ema > 0, ema_momentum=ema or 0.99)
    model.compile(optimizer=optimizer, loss=loss, metrics=[LWLRAP()])
    # Adam's moments created now, eagerly: left to the first step (TensorFlow's fit), they are created inside the
    # traced step, which tf.function then traces a second time, and creating 440 variables there is slow too
    # (ResNet50 on 2 cores: ~50 s of a fold's start-up, ~20 s of it saved; same weights, same scores)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return optimizer


@dataclass(frozen=True)
class Phase:
    """One `fit` of a fold's run: the training model it fits, up to which epoch, and its backup's folder name."""

    name: str
    model: keras.Model
    end_epoch: int


def training_phases(detector: keras.Model, config: dict[str, Any], from_mel_power: bool) -> list[Phase]:
    """The fits of one fold's run, in order, every one training the detector's weights: with
    ``train.low_res_epochs``, first that many epochs on images average-pooled by ``train.low_res_factor``
    (progressive resizing: the early epochs learn coarse shapes at about half the cost per step on a CPU), then the
    rest at full size; otherwise one fit at full size. Only full-size epochs are checkpointed."""
    frame_loss_weight = config["model"]["frame_loss_weight"]
    full = Phase("full", training_model(detector, frame_loss_weight, from_mel_power), config["train"]["epochs"])
    low_res_epochs = config["train"]["low_res_epochs"]
    if not low_res_epochs:
        return [full]
    if low_res_epochs >= full.end_epoch:
        raise ValueError(f"train.low_res_epochs ({low_res_epochs}) must be below train.epochs ({full.end_epoch}): "
                         "the kept model is chosen among full-size epochs")
    low = low_resolution_detector(detector, config["train"]["low_res_factor"])
    return [Phase("low_res", training_model(low, frame_loss_weight, from_mel_power), low_res_epochs), full]
