"""Feeding windows from the waveform cache to Keras, as `keras.utils.PyDataset` (works on every backend).

The host does only what must happen on the host: pick rows, take a randomly jittered crop from the memory-mapped
cache and build the targets. Augmentation and the log-mel run in the model, batched, on the accelerator.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import numpy as np
import pandas as pd

from rfcx.cache import WaveformCache
from rfcx.windows import label_matrix

HostTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def window_targets(windows: pd.DataFrame, unlabelled: str = "negative") -> np.ndarray:
    """Training targets (n, 24) float32: 1 = a tp box of the species is in the window, 0 = known or assumed absent,
    -1 = unknown (masked out of the loss). Species with no box are assumed absent when `unlabelled` is "negative"
    (right for exhaustively labelled data) and masked when it is "ignore"; fp boxes are always known absent."""
    labels = label_matrix(windows, "labels").astype(np.float32)
    negatives = label_matrix(windows, "negatives").astype(bool)
    if unlabelled == "negative":
        return labels
    if unlabelled != "ignore":
        raise ValueError(f"unlabelled must be 'negative' or 'ignore', got {unlabelled!r}")
    return np.where(labels == 1, 1.0, np.where(negatives, 0.0, -1.0)).astype(np.float32)


class WindowBatches(keras.utils.PyDataset):
    """Batches of (waveforms, targets) for a set of cached windows.

    With `shuffle`, each epoch visits the windows in a new seeded order and each window's start is jittered by up to
    `jitter_samples` (a random crop around the call); `max_batches` then fixes the epoch length, below or above one
    pass over the windows. Every batch's randomness derives from (seed, epoch, batch
    index) alone, so the stream is the same whatever the number of loader workers.
    """

    def __init__(self, cache: WaveformCache, rows: np.ndarray, targets: np.ndarray, batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, jitter_samples: int = 0,
                 host_transform: HostTransform | None = None, max_batches: int = 0, **kwargs):
        super().__init__(**kwargs)
        if len(rows) != len(targets):
            raise ValueError(f"{len(rows)} rows but {len(targets)} targets")
        if len(rows) == 0:
            raise ValueError("no windows to feed")
        self.cache = cache
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.jitter_samples = jitter_samples
        self.host_transform = host_transform
        self.max_batches = max_batches
        self.epoch = 0
        self.order = self._order_for(self.epoch)

    def _order_for(self, epoch: int) -> np.ndarray:
        """The epoch's visiting order: one pass, or (when `max_batches` asks for more) several passes, each a
        fresh seeded permutation, so an "epoch" can be longer than the data and checkpointing stays cheap."""
        if not self.shuffle:
            return np.arange(len(self.rows))
        passes = math.ceil(len(self) * self.batch_size / len(self.rows))
        return np.concatenate([np.random.default_rng([self.seed, epoch, repeat]).permutation(len(self.rows))
                               for repeat in range(passes)])

    def __len__(self) -> int:
        """Batches per epoch: a full pass, or exactly `max_batches` when training (fewer when validating)."""
        full = math.ceil(len(self.rows) / self.batch_size)
        if not self.max_batches:
            return full
        return self.max_batches if self.shuffle else min(full, self.max_batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picked = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        jitter = None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.shuffle and self.jitter_samples:
            jitter = rng.integers(-self.jitter_samples, self.jitter_samples + 1, size=len(picked))
        waveforms = self.cache.read(self.rows[picked], jitter)
        if self.host_transform is not None:
            waveforms = np.stack([self.host_transform(clip, rng) for clip in waveforms]).astype(np.float32)
        return waveforms, self.targets[picked]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order_for(self.epoch)
