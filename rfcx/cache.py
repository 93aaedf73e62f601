"""The waveform cache: every training window decoded once, kept as a memory-mapped int16 array.

The reference generator decoded a whole 60 s FLAC for every sample of every epoch. Here each window is decoded once,
with `margin_seconds` of context on both sides for random crops and time shifts, into one `.npy` file of shape
(n_windows, span_samples). Why this format: int16 is exactly what the 16-bit FLACs hold (lossless, half of float32),
a `.npy` opens memory-mapped with plain NumPy on any backend and OS, a batch is a gather of contiguous rows that the
page cache serves, and data-loader workers share it without copies.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from rfcx.audio import int16_to_float, read_info, read_segment
from rfcx.constants import SAMPLE_RATE
from rfcx.io import atomic_path


def span_starts(windows: pd.DataFrame, span_samples: int, margin_samples: int,
                recording_frames: dict[str, int], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """First sample of each window's cached span: `margin` before the window, shifted to stay inside the recording."""
    start = np.round(windows.start.to_numpy() * sample_rate).astype(np.int64) - margin_samples
    frames = windows.recording_id.map(recording_frames).to_numpy(dtype=np.int64)
    return np.clip(start, 0, np.maximum(frames - span_samples, 0))


def build_cache(windows: pd.DataFrame, recording_path: Callable[[str], Path], out_path: str | Path, *,
                margin_seconds: float = 1.0, sample_rate: int = SAMPLE_RATE, workers: int | None = None) -> pd.DataFrame:
    """Decode every window (plus margins) into `out_path` (.npy, int16) and return the cache index.

    The index has one row per window, in window order: window_id, span_start (sample in the recording) and
    window_offset (sample of the window start within the span). The array is written to a temporary name and moved
    into place at the end, so an interrupted build never leaves a cache that looks complete.
    """
    out_path = Path(out_path)
    window_samples = int(round((windows.end - windows.start).iloc[0] * sample_rate)) if len(windows) else 0
    margin_samples = int(round(margin_seconds * sample_rate))
    span_samples = window_samples + 2 * margin_samples
    frames = {rid: read_info(recording_path(rid)).frames for rid in windows.recording_id.unique()}
    starts = span_starts(windows, span_samples, margin_samples, frames, sample_rate)
    window_start = np.round(windows.start.to_numpy() * sample_rate).astype(np.int64)
    rows_of = windows.groupby("recording_id", sort=False).indices

    def fill(array: np.ndarray, recording_id: str) -> None:
        audio = read_segment(recording_path(recording_id), expected_rate=sample_rate)
        for row in rows_of[recording_id]:
            segment = audio[starts[row]:starts[row] + span_samples]
            array[row, :len(segment)] = segment
            array[row, len(segment):] = 0

    with atomic_path(out_path) as partial:
        array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int16, shape=(len(windows), span_samples))
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(lambda recording_id: fill(array, recording_id), rows_of))
        array.flush()
        del array
    return pd.DataFrame({"window_id": windows.window_id.to_numpy(), "span_start": starts,
                         "window_offset": window_start - starts})


@dataclass
class WaveformCache:
    """Read access to a built cache: batches of windows as float32, with optional per-window start jitter."""

    path: Path
    index: pd.DataFrame
    window_samples: int

    def __post_init__(self) -> None:
        self.array = np.load(self.path, mmap_mode="r")
        if len(self.index) != self.array.shape[0]:
            raise ValueError(f"{self.path}: cache has {self.array.shape[0]} rows but its index {len(self.index)}")
        self.offsets = self.index.window_offset.to_numpy(dtype=np.int64)

    @property
    def span_samples(self) -> int:
        return int(self.array.shape[1])

    def read(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
        """Windows `rows` as a (len(rows), window_samples) float32 batch; `jitter` shifts each start (in samples),
        clamped to the cached span, which is how training takes random crops around a call."""
        offsets = self.offsets[rows] if jitter is None else self.offsets[rows] + jitter
        offsets = np.clip(offsets, 0, self.span_samples - self.window_samples)
        batch = np.empty((len(rows), self.window_samples), dtype=np.float32)
        for out, (row, offset) in enumerate(zip(rows, offsets)):  # one pass per window: int16 -> scaled float32
            int16_to_float(self.array[row, offset:offset + self.window_samples], out=batch[out])
        return batch


class StackedCache:
    """Several built caches read as one: the rows of each follow the last row of the one before (the training
    windows' cache, then a cache of pseudo-labelled windows), so one loader feeds windows from all of them.
    Empty caches are left out; the others must hold windows of the same length and span."""

    def __init__(self, caches: list[WaveformCache]):
        caches = [cache for cache in caches if len(cache.offsets)]
        if not caches:
            raise ValueError("no cached windows to stack")
        shapes = {(cache.window_samples, cache.span_samples) for cache in caches}
        if len(shapes) > 1:
            raise ValueError(f"caches of different window or span lengths cannot be stacked: {sorted(shapes)}")
        self.caches = caches
        self.first_rows = np.cumsum([0] + [len(cache.offsets) for cache in caches])
        self.offsets = np.concatenate([cache.offsets for cache in caches])
        self.window_samples, self.span_samples = shapes.pop()

    def read(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
        """As WaveformCache.read, each row read from the cache that holds it."""
        rows = np.asarray(rows, dtype=np.int64)
        batch = np.empty((len(rows), self.window_samples), dtype=np.float32)
        part = np.searchsorted(self.first_rows, rows, side="right") - 1
        for index, cache in enumerate(self.caches):
            mine = np.flatnonzero(part == index)
            if len(mine):
                batch[mine] = cache.read(rows[mine] - self.first_rows[index],
                                         None if jitter is None else np.asarray(jitter)[mine])
        return batch
