"""Training one fold: fit on the other folds' windows, keep the checkpoint with the best validation LWLRAP.

The fold's training recipe (rfcx.model.recipe) builds the detector and feeds the loader; the fold's data
(rfcx.training.fold_data), its phases and optimizer (rfcx.training.phases) and its checkpoints and resumption
(rfcx.training.checkpoint) each live in their own module. A run killed mid-way continues from its last finished
epoch on the next call.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.mel_cache import mel_power_cache
from rfcx.model.detector import frame_count, recipe_detector
from rfcx.model.recipe import Recipe
from rfcx.pipeline.backend import backend_summary, choose_precision, distribution_scope, make_deterministic
from rfcx.training.checkpoint import (MONITOR, BestCheckpoint, EpochSeeds, FoldPaths, best_logged, run_fingerprint,
                                      staged)
from rfcx.training.fold_data import fold_datasets
from rfcx.training.phases import compile_model, training_phases


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
    recipe = Recipe.from_config(config, config["seed"] + fold)
    detector = recipe_detector(recipe, config["model"])
    phases = training_phases(detector, config, recipe.mel_power_cache)
    # the same layers as an uncompiled model: saving it writes the weights without the optimizer's state
    exported = keras.Model(detector.inputs, detector.outputs, name=detector.name)
    if recipe.mel_power_cache:
        cache = mel_power_cache(cache, detector)
    train, validation = fold_datasets(windows, cache, config, fold, recipe, frame_count(detector),
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
