"""A fold's run on disk: where it writes, the best checkpoint, and what lets a killed run resume where it stopped.

A run killed mid-way (pre-empted job, Ctrl-C) continues from its last finished epoch on the next call, through
Keras' BackupAndRestore, and the best-checkpoint logic carries on from the best score already logged, so resuming
never replaces a better model with a worse one. The backup folder is keyed by a fingerprint of the settings, so a run
with changed settings starts afresh instead of resuming someone else's weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

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


def best_logged(history: Path, from_epoch: int = 0) -> float | None:
    """Best val LWLRAP in an existing history file from epoch `from_epoch` on (the full-size ones), if any."""
    if not history.exists() or history.stat().st_size == 0:
        return None
    logged = pd.read_csv(history)
    logged = logged[logged.epoch >= from_epoch] if "epoch" in logged else logged
    return float(logged[MONITOR].max()) if MONITOR in logged and len(logged) else None


def seeded_rng(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator for (seed, keys), the way every seeded choice in rfcx derives its randomness."""
    return np.random.default_rng([seed, *keys])
