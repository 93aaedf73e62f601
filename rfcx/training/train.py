"""Training one fold: fit on the other folds' windows, keep the checkpoint with the best validation LWLRAP.

A run killed mid-way (pre-empted job, Ctrl-C) continues from its last finished epoch on the next call, through
Keras' BackupAndRestore, and the best-checkpoint logic carries on from the best score already logged, so resuming
never replaces a better model with a worse one. The backup folder is keyed by a fingerprint of the settings, so a run
with changed settings starts afresh instead of resuming someone else's weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.mel_cache import MelPowerCache, mel_power_cache_blocker
from rfcx.data.windows import WINDOW_COLUMNS
from rfcx.model.augment import AugmentationStages, build_augmentations
from rfcx.model.detector import build_model, frame_count, low_resolution_detector, training_model, window_samples
from rfcx.model.losses import MaskedBinaryCrossentropy, MaskedCategoricalCrossentropy
from rfcx.model.metrics import LWLRAP
from rfcx.pipeline.backend import backend_summary, choose_precision, distribution_scope, make_deterministic
from rfcx.training.confuser_mix import ConfuserMix
from rfcx.training.loader import FrameBoxes, WindowBatches, window_targets
from rfcx.training.pseudo import pseudo_targets

MONITOR = "val_lwlrap"
#: Settings (config sections) that define a training run; their fingerprint names the resume backup.
RUN_SECTIONS = ("seed", "windows", "features", "augment", "model", "train")


@dataclass(frozen=True)
class FoldPaths:
    """Where a fold's training writes: the best model, the per-epoch history and the resume backup."""

    out_dir: Path

    @property
    def model(self) -> Path:
        return self.out_dir / "model.keras"

    @property
    def history(self) -> Path:
        return self.out_dir / "history.csv"

    @property
    def best(self) -> Path:
        return self.out_dir / "best-so-far.weights.h5"

    def backup(self, fingerprint: str) -> Path:
        return self.out_dir / "backup" / fingerprint


def staged(path: Path) -> Path:
    """Where `path` is written before it is renamed into place, so that a kill mid-write never leaves it broken."""
    return path.with_name("partial-" + path.name)


class BestCheckpoint(keras.callbacks.Callback):
    """Writes the detector's weights whenever val LWLRAP beats the best so far, starting from the best value already
    logged by an earlier, interrupted attempt of the same run.

    Only the detector's own weights are written (ResNet50: ~100 MB, ~0.5 s), not a whole `.keras` file with Adam's
    moments (309 MB, ~2.5 s per save, nearly every epoch of a short run); resuming needs the optimizer state, but
    BackupAndRestore keeps that. The file is written beside its target and renamed, so a kill mid-save never leaves
    a broken best checkpoint."""

    def __init__(self, detector: keras.Model, filepath: Path, initial_best: float | None):
        super().__init__()
        self.detector, self.filepath = detector, filepath
        self.best = initial_best if initial_best is not None and math.isfinite(initial_best) else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = (logs or {}).get(MONITOR)
        if current is not None and current > self.best:
            self.best = float(current)
            self.detector.save_weights(str(staged(self.filepath)))
            staged(self.filepath).replace(self.filepath)


class EpochSeeds(keras.callbacks.Callback):
    """Reseeds every random generator inside the model (augmentations, dropout) from (seed, epoch) as each epoch
    begins, so an epoch draws the same augmentations whether the run got there uninterrupted or resumed from a
    backup: the generators' states are not among the weights BackupAndRestore writes, and carried on from wherever
    the killed process left them, a resumed run ended with other weights than an uninterrupted one. (Checked
    exact on TensorFlow; on JAX a resumed run still differs.)"""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        for index, state in enumerate(states):
            start = seeded_rng(self.seed, epoch, index).integers(0, 2**31 - 1)
            state.assign(np.array([start, 0], dtype=state.dtype))


def run_fingerprint(config: dict[str, Any], fold: int) -> str:
    """Short hash of everything that defines this fold's run."""
    settings = {name: config[name] for name in RUN_SECTIONS} | {"fold": fold}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


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


def best_logged(history: Path, from_epoch: int = 0) -> float | None:
    """Best val LWLRAP in an existing history file from epoch `from_epoch` on (the full-size ones), if any."""
    if not history.exists() or history.stat().st_size == 0:
        return None
    logged = pd.read_csv(history)
    logged = logged[logged.epoch >= from_epoch] if "epoch" in logged else logged
    return float(logged[MONITOR].max()) if MONITOR in logged and len(logged) else None


def fold_datasets(windows: pd.DataFrame, cache: WaveformCache | StackedCache, config: dict[str, Any], fold: int,
                  host_transform=None, batch_transform=None, n_frames: int = 0, pad_to_batch: bool = False,
                  pseudo: pd.DataFrame | None = None) -> tuple[WindowBatches, WindowBatches]:
    """Training batches (shuffled, jittered, other folds; `batch_transform` = Mixup) and validation batches (fold
    `fold`, as is). With `n_frames` (the sed head) each batch also carries frame-wise targets from the boxes.
    `pseudo` (stage 2): pseudo-labelled windows (rfcx.training.pseudo) trained on beside the other folds' windows, never
    validated on, so validation scores stay comparable with stage 1. Windows centred on fp boxes
    (windows.fp_window_fraction) are never validated on either, for the same reason; with train.confuser_mix they are
    mixed into the training windows (rfcx.training.confuser_mix) instead of trained on alone."""
    train_cfg = config["train"]
    in_fold = windows.fold.to_numpy() == fold
    centred_on_fp = windows.source.to_numpy() == "fp"
    # validated on the calls alone: the windows an fp_window_fraction adds would make the score depend on it
    is_val = in_fold & ~centred_on_fp
    mixing = train_cfg["confuser_mix"]["p"] > 0
    is_train = ~in_fold & ~(centred_on_fp & mixing)  # with confuser mixing, fp-centred windows are partners only
    if not is_val.any() or not is_train.any():
        raise ValueError(f"fold {fold} leaves no training or no validation windows")
    targets = window_targets(windows, train_cfg["unlabelled"], train_cfg["labels"])
    validation_targets = window_targets(windows, "negative")
    if pseudo is not None:
        if (pseudo.fold.to_numpy() == fold).any():
            raise ValueError(f"pseudo-labelled windows of fold {fold}'s recordings would leak it into its training")
        windows = pd.concat([windows, pseudo[list(WINDOW_COLUMNS)]], ignore_index=True)
        extra = pseudo_targets(pseudo)
        targets, validation_targets = (np.concatenate([both, extra]) for both in (targets, validation_targets))
        is_val = np.concatenate([is_val, np.zeros(len(pseudo), dtype=bool)])
        is_train = np.concatenate([is_train, np.ones(len(pseudo), dtype=bool)])
        in_fold, centred_on_fp = (np.concatenate([both, np.zeros(len(pseudo), dtype=bool)])
                                  for both in (in_fold, centred_on_fp))
    boxes = {True: None, False: None}
    if n_frames:
        every = FrameBoxes.from_windows(windows, config["windows"]["window_seconds"], n_frames)
        boxes = {True: every.subset(np.flatnonzero(is_val)), False: every.subset(np.flatnonzero(is_train))}
    rate = config["features"]["sample_rate"]
    jitter = int(min(train_cfg["random_crop_seconds"], config["windows"]["margin_seconds"]) * rate)
    loader = {"workers": max(train_cfg["workers"], 1), "use_multiprocessing": False, "pad_to_batch": pad_to_batch}
    rows = windows.window_id.to_numpy()
    confusers = None
    partners = ~in_fold & centred_on_fp
    if mixing and not partners.any():  # e.g. a dataset without train_fp rows: the default config still trains
        print(f"fold {fold}: no fp-centred windows in the training folds (windows.fp_window_fraction "
              f"{config['windows']['fp_window_fraction']}), so no confuser mixing", file=sys.stderr)
    elif mixing:
        mix = train_cfg["confuser_mix"]
        confusers = ConfuserMix(rows[partners], targets[partners], mix["p"], tuple(mix["gain_db"]), jitter)
    train = WindowBatches(cache, rows[is_train], targets[is_train], train_cfg["batch_size"], shuffle=True,
                          seed=config["seed"] + fold, jitter_samples=jitter, host_transform=host_transform,
                          max_batches=train_cfg["steps_per_epoch"], frame_boxes=boxes[False],
                          batch_transform=batch_transform, confusers=confusers, **loader)
    validation = WindowBatches(cache, rows[is_val], validation_targets[is_val], train_cfg["batch_size"],
                               frame_boxes=boxes[True], **loader)
    return train, validation


def train_fold(windows: pd.DataFrame, cache: WaveformCache | StackedCache, config: dict[str, Any], fold: int,
               out_dir: str | Path, extra_callbacks: list[keras.callbacks.Callback] | None = None,
               pseudo: pd.DataFrame | None = None) -> pd.DataFrame:
    """Train fold `fold`; write model.keras (best val LWLRAP) and history.csv into `out_dir`; return the history.
    With train.distribution: data_parallel, on all devices at once, each taking a share of every batch. `pseudo`:
    pseudo-labelled windows to train on too (stage 2, see fold_datasets)."""
    with distribution_scope(config["train"]["distribution"], config["train"]["batch_size"]) as devices:
        if devices > 1:
            print(f"data parallel over {devices} devices, {config['train']['batch_size'] // devices} windows "
                  "of each batch per device", file=sys.stderr)
        return _train_fold(windows, cache, config, fold, out_dir, extra_callbacks, pseudo)


def _train_fold(windows: pd.DataFrame, cache: WaveformCache | StackedCache, config: dict[str, Any], fold: int,
                out_dir: str | Path, extra_callbacks: list[keras.callbacks.Callback] | None = None,
                pseudo: pd.DataFrame | None = None) -> pd.DataFrame:
    paths = FoldPaths(Path(out_dir))
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    make_deterministic(config["seed"] + fold)
    keras.config.set_dtype_policy(choose_precision(config["train"]["mixed_precision"]))
    print(f"training fold {fold}: {backend_summary()}, policy {keras.config.dtype_policy().name}", file=sys.stderr)
    features = config["features"]
    stages = build_augmentations(config["augment"], features=features, seed=config["seed"] + fold)
    detector = build_model(features, config["model"], config["windows"]["window_seconds"], stages)
    from_mel_power = config["train"]["mel_power_cache"] and mel_power_cache_allowed(stages)
    phases = training_phases(detector, config, from_mel_power)
    # the same layers as an uncompiled model: saving it writes the weights without the optimizer's state
    exported = keras.Model(detector.inputs, detector.outputs, name=detector.name)
    if from_mel_power:
        cache = mel_power_cache(cache, detector)
    train, validation = fold_datasets(windows, cache, config, fold, stages.host, stages.batch, frame_count(detector),
                                      pad_to_batch=config["train"]["distribution"] != "none", pseudo=pseudo)
    optimizer = None
    for phase in phases:
        optimizer = compile_model(phase.model, config, len(train), optimizer)

    backup = paths.backup(run_fingerprint(config, fold))
    started = [index for index, phase in enumerate(phases) if (backup / phase.name / "training_metadata.json").exists()]
    resuming = bool(started)
    if resuming:  # continue in the latest phase that had begun, where its backup left off
        train.epoch = json.loads((backup / phases[started[-1]].name / "training_metadata.json").read_text())["epoch"]
        train.order = train._order_for(train.epoch)
    else:
        for stale in (paths.history, paths.best, staged(paths.best)):
            stale.unlink(missing_ok=True)
    first_full_epoch = phases[-2].end_epoch if len(phases) > 1 else 0
    first = started[-1] if started else 0
    for index in range(first, len(phases)):
        phase, final = phases[index], index == len(phases) - 1
        callbacks = [
            EpochSeeds(config["seed"] + fold),
            # raw weights, EMA in the optimizer; an earlier phase's backup stays until the run ends, so a kill
            # between phases resumes after it
            keras.callbacks.BackupAndRestore(str(backup / phase.name), double_checkpoint=True,
                                             delete_checkpoint=final),
            *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config["train"]["ema_momentum"] else []),
            *([BestCheckpoint(exported, paths.best, best_logged(paths.history, first_full_epoch) if resuming
                              else None)] if final else []),
            keras.callbacks.CSVLogger(str(paths.history), append=resuming or index > first),
            *(extra_callbacks or []),
        ]
        if final and config["train"]["early_stopping_patience"]:
            callbacks.append(keras.callbacks.EarlyStopping(MONITOR, mode="max", restore_best_weights=False,
                                                           patience=config["train"]["early_stopping_patience"]))
        phase.model.fit(train, validation_data=validation, initial_epoch=phases[index - 1].end_epoch if index else 0,
                        epochs=phase.end_epoch, callbacks=callbacks, shuffle=False,  # WindowBatches shuffles, seeded
                        verbose=1 if sys.stderr.isatty() else 2)
    # keep only the waveform -> clip scores detector with the best weights, without the optimizer's state: a third
    # of a compiled model's size (ResNet50: ~100 MB instead of 309 MB), and quicker to load for prediction
    exported.load_weights(str(paths.best))
    exported.save(staged(paths.model))
    staged(paths.model).replace(paths.model)
    for done in (paths.best, staged(paths.best)):  # a save killed mid-write in an earlier attempt leaves the latter
        done.unlink(missing_ok=True)
    shutil.rmtree(paths.out_dir / "backup", ignore_errors=True)
    return pd.read_csv(paths.history)


def mel_power_cache_allowed(stages: AugmentationStages) -> bool:
    """Whether training can start from cached mel power; says why not on stderr when it cannot."""
    reason = mel_power_cache_blocker(stages)
    if reason:
        print(f"train.mel_power_cache: computing the STFT at every step instead: {reason} need the waveform",
              file=sys.stderr)
    return reason is None


def mel_power_cache(cache: WaveformCache | StackedCache, detector: keras.Model) -> MelPowerCache:
    """The mel power of every cached span, through the detector's own log-mel layer, timed on stderr."""
    started = time.perf_counter()
    mel = MelPowerCache(cache, detector.get_layer("log_mel"))
    print(f"mel-power cache: {len(mel.offsets)} spans, {mel.nbytes / 2**20:.1f} MiB in memory, built in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return mel


def seeded_rng(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator for (seed, keys), the way every seeded choice in rfcx derives its randomness."""
    return np.random.default_rng([seed, *keys])
