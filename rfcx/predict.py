"""Prediction: out-of-fold scores for cached windows, and sliding-window scores over whole recordings.

A recording's score per species is pooled over its windows (max by default: a call anywhere in the minute means the
species is present). Decoding runs in background threads while the model predicts, so inference is bound by
whichever is slower rather than by their sum.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import keras
import numpy as np
import pandas as pd

from rfcx.audio import int16_to_float, read_segment
from rfcx.cache import WaveformCache
from rfcx.constants import SPECIES_COLUMNS


def predict_cached_windows(model: keras.Model, cache: WaveformCache, rows: np.ndarray,
                           batch_size: int = 64) -> np.ndarray:
    """Scores (n, 24) of cached windows, each read at its centred position (no jitter, no augmentation)."""
    batches = [model.predict_on_batch(cache.read(rows[start:start + batch_size]))
               for start in range(0, len(rows), batch_size)]
    return np.concatenate([np.asarray(batch, dtype=np.float32) for batch in batches])


def window_starts(n_samples: int, window_samples: int, hop_samples: int) -> np.ndarray:
    """Start samples of sliding windows covering a recording; the last window ends at the recording's end, so no
    tail goes unscored. A recording shorter than one window gets one (zero-padded) window."""
    if n_samples <= window_samples:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_samples - window_samples + 1, hop_samples, dtype=np.int64)
    if starts[-1] + window_samples < n_samples:
        starts = np.append(starts, n_samples - window_samples)
    return starts


def sliding_windows(audio: np.ndarray, window_samples: int, hop_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, windows): the recording cut into overlapping windows, as a (n_windows, window_samples) array."""
    starts = window_starts(len(audio), window_samples, hop_samples)
    if len(audio) < window_samples:
        audio = np.pad(audio, (0, window_samples - len(audio)))
    view = np.lib.stride_tricks.sliding_window_view(audio, window_samples)
    return starts, np.ascontiguousarray(view[starts])


def decoded(paths: Iterable[Path], sample_rate: int, workers: int | None = None) -> Iterator[tuple[Path, np.ndarray]]:
    """Decode recordings in background threads, yielding them in order with a few in flight."""
    paths = list(paths)
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        load = lambda path: int16_to_float(read_segment(path, expected_rate=sample_rate))  # noqa: E731
        pending = [pool.submit(load, path) for path in paths[:workers * 2]]
        for index, path in enumerate(paths):
            audio = pending[index].result()
            if index + workers * 2 < len(paths):
                pending.append(pool.submit(load, paths[index + workers * 2]))
            pending[index] = None
            yield path, audio


def predict_recordings(model: keras.Model, paths: dict[str, Path], *, sample_rate: int, window_seconds: float,
                       hop_seconds: float, batch_size: int = 64,
                       progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Per-window scores of every recording: columns recording_id, start (s), end (s), s0..s23.

    Windows of consecutive recordings are packed into full batches, so the model always sees `batch_size` windows
    (60 s recordings give 11 windows each at the default window and hop).
    """
    window_samples = int(round(window_seconds * sample_rate))
    hop_samples = int(round(hop_seconds * sample_rate))
    frames: list[pd.DataFrame] = []
    queued: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        windows = np.concatenate([item[2] for item in queued])
        scores = np.concatenate([np.asarray(model.predict_on_batch(windows[i:i + batch_size]), dtype=np.float32)
                                 for i in range(0, len(windows), batch_size)])
        offset = 0
        for recording_id, starts, _ in queued:
            frame = pd.DataFrame(scores[offset:offset + len(starts)], columns=list(SPECIES_COLUMNS))
            frame.insert(0, "end", (starts + window_samples) / sample_rate)
            frame.insert(0, "start", starts / sample_rate)
            frame.insert(0, "recording_id", recording_id)
            frames.append(frame)
            offset += len(starts)
        if progress:
            progress(len(queued))
        queued.clear()

    for recording_id, (_, audio) in zip(paths, decoded(paths.values(), sample_rate)):
        starts, windows = sliding_windows(audio, window_samples, hop_samples)
        queued.append((recording_id, starts, windows))
        if sum(len(item[1]) for item in queued) >= batch_size:
            flush()
    if queued:
        flush()
    return pd.concat(frames, ignore_index=True)


def pool_recordings(window_scores: pd.DataFrame, pooling: str) -> pd.DataFrame:
    """Recording-level scores (recording_id, s0..s23) from per-window scores, in first-seen order."""
    grouped = window_scores.groupby("recording_id", sort=False)[list(SPECIES_COLUMNS)]
    pooled = grouped.max() if pooling == "max" else grouped.mean() if pooling == "mean" else None
    if pooled is None:
        raise ValueError(f"unknown pooling {pooling!r}")
    return pooled.reset_index()
