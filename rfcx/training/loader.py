"""Feeding windows from the waveform cache to Keras, as `keras.utils.PyDataset` (works on every backend).

The host does only what must happen on the host: pick rows, take a randomly jittered crop from the waveform
cache and build the targets. Augmentation and the log-mel run in the model, batched, on the accelerator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES
from rfcx.data.batches import padded_batch
from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.mel_cache import MelPowerCache
from rfcx.data.windows import label_matrix
from rfcx.model.recipe import LoaderAugmentations


def window_targets(windows: pd.DataFrame, unlabelled: str = "negative", labels: str = "multi") -> np.ndarray:
    """Training targets (n, 24) float32: 1 = a tp box of the species is in the window, 0 = known or assumed absent,
    -1 = unknown (masked out of the loss). Species with no box are assumed absent when `unlabelled` is "negative"
    (right for exhaustively labelled data) and masked when it is "ignore"; fp boxes are always known absent.
    `labels` "anchor" keeps only the species of the box the window is centred on (the reference recipe: one species
    per crop; an fp-anchored window has none)."""
    if labels == "anchor":
        anchor = np.zeros((len(windows), N_SPECIES), dtype=np.float32)
        is_tp = windows.source.to_numpy() == "tp"
        anchor[np.flatnonzero(is_tp), windows.species_id.to_numpy()[is_tp]] = 1.0
        return anchor
    if labels != "multi":
        raise ValueError(f"labels must be 'multi' or 'anchor', got {labels!r}")
    labels = label_matrix(windows, "labels").astype(np.float32)
    negatives = label_matrix(windows, "negatives").astype(bool)
    if unlabelled == "negative":
        return labels
    if unlabelled != "ignore":
        raise ValueError(f"unlabelled must be 'negative' or 'ignore', got {unlabelled!r}")
    return np.where(labels == 1, 1.0, np.where(negatives, 0.0, -1.0)).astype(np.float32)


@dataclass(frozen=True)
class FrameBoxes:
    """The tp and fp boxes near each window (seconds from the window start), turned into frame-wise targets once the
    crop of a batch is known. Frame t of `n_frames` covers [t, t + 1) * window_seconds / n_frames of the crop."""

    species: list[np.ndarray]
    start: list[np.ndarray]
    end: list[np.ndarray]
    positive: list[np.ndarray]
    window_seconds: float
    n_frames: int

    @classmethod
    def from_windows(cls, windows: pd.DataFrame, window_seconds: float, n_frames: int) -> FrameBoxes:
        missing = [c for c in ("box_species", "box_start", "box_end", "box_positive") if c not in windows]
        if missing:
            raise ValueError(f"windows.parquet lacks {missing}: re-run crop_windows (frame-wise targets need them)")
        as_arrays = lambda column, dtype: [np.asarray(v, dtype=dtype) for v in windows[column]]  # noqa: E731
        return cls(as_arrays("box_species", np.int64), as_arrays("box_start", np.float64),
                   as_arrays("box_end", np.float64), as_arrays("box_positive", np.int8), float(window_seconds),
                   int(n_frames))

    def subset(self, picked: np.ndarray) -> FrameBoxes:
        take = lambda values: [values[i] for i in picked]  # noqa: E731
        return FrameBoxes(take(self.species), take(self.start), take(self.end), take(self.positive),
                          self.window_seconds, self.n_frames)

    def targets(self, picked: np.ndarray, shift_seconds: np.ndarray | None = None) -> np.ndarray:
        """(len(picked), n_frames, 24) float32 targets of the windows `picked`, each crop starting `shift_seconds`
        after its window: 1 in frames a tp box covers, 0 in frames only an fp box of the species covers, -1 (unknown,
        masked out of the loss) everywhere else. A box covers a frame when their overlap is at least half the shorter
        of the two."""
        out = np.full((len(picked), self.n_frames, N_SPECIES), -1.0, dtype=np.float32)
        frame = self.window_seconds / self.n_frames
        frame_start = np.arange(self.n_frames) * frame
        for k, row in enumerate(picked):
            shift = 0.0 if shift_seconds is None else float(shift_seconds[k])
            start, end = self.start[row] - shift, self.end[row] - shift
            overlap = np.clip(np.minimum(end[:, None], frame_start + frame) - np.maximum(start[:, None], frame_start),
                              0.0, None)
            covers = overlap >= 0.5 * np.minimum(end - start, frame)[:, None] - 1e-9
            covers &= overlap > 0
            for positive in (0, 1):  # fp boxes first, so a tp box of the same species wins
                for box in np.flatnonzero(self.positive[row] == positive):
                    out[k, covers[box], self.species[row][box]] = float(positive)
        return out


class WindowBatches(keras.utils.PyDataset):
    """Batches of (waveforms, targets) for a set of cached windows.

    With `shuffle`, each epoch visits the windows in a new seeded order and each window's start is jittered by up to
    `jitter_samples` (a random crop around the call); `max_batches` then fixes the epoch length, below or above one
    pass over the windows. Every batch's randomness derives from (seed, epoch, batch
    index) alone, so the stream is the same whatever the number of loader workers.

    The inputs are the cache's: waveforms from a waveform cache, {"power", "signal_power"} from a mel-power cache
    (``rfcx.data.mel_cache``, whose crops start on the hop grid). With `frame_boxes` (frame-wise training of the SED
    head) they are a dict with "frame_targets" too, following each crop's actual start. `augment` holds the
    training recipe's loader augmentations (``rfcx.model.recipe.LoaderAugmentations``) in their order: confuser
    mixing on the cache's inputs, host transforms per clip, then Mixup on waveforms and targets; the two mixes run
    on shuffled (training) batches only.
    """

    def __init__(self, cache: WaveformCache | StackedCache | MelPowerCache, rows: np.ndarray, targets: np.ndarray,
                 batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, jitter_samples: int = 0,
                 augment: LoaderAugmentations | None = None, max_batches: int = 0,
                 frame_boxes: FrameBoxes | None = None, pad_to_batch: bool = False, **kwargs):
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
        self.augment = augment or LoaderAugmentations()
        self.max_batches = max_batches
        if frame_boxes is not None and len(frame_boxes.species) != len(self.rows):
            raise ValueError(f"{len(self.rows)} rows but boxes for {len(frame_boxes.species)}")
        if frame_boxes is not None and self.augment.overlay is not None:
            raise ValueError("confuser mixing does not follow frame-wise targets (model.head: sed)")
        self.frame_boxes = frame_boxes
        self.pad_to_batch = pad_to_batch
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

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        picked = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        jitter = None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.shuffle and self.jitter_samples:
            jitter = rng.integers(-self.jitter_samples, self.jitter_samples + 1, size=len(picked))
        inputs = self.read(self.rows[picked], jitter)
        targets = [self.targets[picked]]
        augment = self.augment
        if self.shuffle and augment.overlay is not None:
            inputs, targets[0] = augment.overlay(self.read, inputs, targets[0], rng)
        if augment.host is not None:
            inputs["waveform"] = np.stack([augment.host(clip, rng) for clip in inputs["waveform"]]).astype(np.float32)
        if self.frame_boxes is not None:
            shift = self.crop_shift(self.rows[picked], jitter) / self.cache_rate()
            targets.append(self.frame_boxes.targets(picked, shift))
        if self.shuffle and augment.batch is not None:
            inputs["waveform"], targets = augment.batch(inputs["waveform"], targets, rng)
        if self.pad_to_batch and len(picked) < self.batch_size:
            inputs, targets = padded_batch(inputs, targets, self.batch_size)
        if self.frame_boxes is not None:
            inputs["frame_targets"] = targets[1]
        return (inputs["waveform"] if list(inputs) == ["waveform"] else inputs), targets[0]

    def read(self, rows: np.ndarray, jitter: np.ndarray | None) -> dict[str, np.ndarray]:
        """The model inputs of cache rows cropped at `jitter`: {"waveform"} from a waveform cache, {"power",
        "signal_power"} from a mel-power cache."""
        inputs = self.cache.read(rows, jitter)
        return inputs if isinstance(inputs, dict) else {"waveform": inputs}

    def crop_shift(self, rows: np.ndarray, jitter: np.ndarray | None) -> np.ndarray:
        """Samples by which each crop actually starts after its window (the jitter as the cache clamps, or for a
        mel-power cache rounds, it)."""
        return (self.cache.crop_starts(rows, jitter) - self.cache.offsets[rows]).astype(np.float64)

    def cache_rate(self) -> float:
        """Samples per second of the cached audio (the window's samples over its seconds)."""
        return self.cache.window_samples / self.frame_boxes.window_seconds

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order_for(self.epoch)
