"""Prediction: out-of-fold scores for cached windows, and sliding-window scores over whole recordings.

A recording's score per species is pooled over its windows (max by default: a call anywhere in the minute means the
species is present). Decoding runs in background threads while the model predicts, so inference is bound by
whichever is slower rather than by their sum.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import keras
import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS
from rfcx.data.audio import int16_to_float, read_segment, samples
from rfcx.data.cache import WaveformCache
from rfcx.pipeline.threads import usable_cpu_count
from rfcx.data.batches import pad_rows


def predict_cached_windows(model: keras.Model, cache: WaveformCache, rows: np.ndarray, batch_size: int = 64,
                           shifts_samples: Sequence[int] = (0,)) -> np.ndarray:
    """Scores (n, 24) of cached windows: the mean over crops shifted by each of ``shifts_samples`` from the
    window's centred position (no augmentation; ``(0,)``: the centred crop alone).

    Why several crops: training sees each call at a random offset (``train.random_crop_seconds``), and one
    window's score moves by a few hundredths of LWLRAP with where exactly the call sits in it; averaging crops a
    fraction of a second apart (test-time augmentation) scores what the model knows rather than the one offset.
    Each shift must stay within the cached margin around the window (where a recording's start or end cuts that
    margin short, the crop stops there, as training's random crops do).
    """
    margin = (cache.span_samples - cache.window_samples) // 2
    if any(abs(int(shift)) > margin for shift in shifts_samples):
        raise ValueError(f"crop shifts {list(shifts_samples)} samples exceed the cached margin of {margin} samples "
                         "around each window (windows.margin_seconds)")
    total = np.zeros((len(rows), N_SPECIES), dtype=np.float64)
    for shift in shifts_samples:
        jitter = np.full(len(rows), int(shift), dtype=np.int64)
        total += np.concatenate([
            predict_batch(model, cache.read(rows[start:start + batch_size], jitter[start:start + batch_size]),
                          batch_size)
            for start in range(0, len(rows), batch_size)])
    return (total / len(shifts_samples)).astype(np.float32)


def predict_batch(model: keras.Model, windows: np.ndarray, batch_size: int) -> np.ndarray:
    """Scores of up to `batch_size` windows, always run as a full batch (the last one zero-padded): every call
    has the same shape, so the compiled predict function is traced once instead of again for a short last batch
    (seconds on TensorFlow, a recompilation on JAX)."""
    scores = model.predict_on_batch(pad_rows(windows, batch_size, 0.0))
    return np.asarray(scores, dtype=np.float32)[:len(windows)]


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
    """Decode recordings in background threads (libsndfile decodes outside the GIL: two threads decode ~1.9x as
    fast on 2 cores), one per usable core up to 8, yielding them in order with a few in flight."""
    paths = list(paths)
    workers = workers or min(8, usable_cpu_count())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        load = lambda path: int16_to_float(read_segment(path, expected_rate=sample_rate))  # noqa: E731
        pending = [pool.submit(load, path) for path in paths[:workers * 2]]
        for index, path in enumerate(paths):
            audio = pending[index].result()
            if index + workers * 2 < len(paths):
                pending.append(pool.submit(load, paths[index + workers * 2]))
            pending[index] = None
            yield path, audio


class WindowScorer:
    """Scores windows of consecutive recordings in full batches only and hands each recording back as soon as all
    of its windows are scored: a batch may span several recordings and a recording several batches, so the model
    always sees `batch_size` windows and only the very last batch is padded."""

    def __init__(self, model: keras.Model, batch_size: int):
        self.model = model
        self.batch_size = batch_size
        self.waiting: list[tuple[str, np.ndarray]] = []  # (recording_id, starts) not yet handed back
        self.unscored: list[np.ndarray] = []
        self.scored: list[np.ndarray] = []

    def add(self, recording_id: str, starts: np.ndarray, windows: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Queue a recording's windows; returns the recordings completed by the full batches this made possible."""
        self.waiting.append((recording_id, starts))
        self.unscored.append(windows)
        return self._score(final=False)

    def finish(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Score what is left (one padded batch at most) and return the remaining recordings."""
        return self._score(final=True)

    def _score(self, final: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
        pending = sum(len(windows) for windows in self.unscored)
        if pending < self.batch_size and not (final and pending):
            return self._completed()
        windows = np.concatenate(self.unscored)
        ready = len(windows) if final else len(windows) // self.batch_size * self.batch_size
        for first in range(0, ready, self.batch_size):
            self.scored.append(predict_batch(self.model, windows[first:first + self.batch_size], self.batch_size))
        self.unscored = [windows[ready:]] if ready < len(windows) else []
        return self._completed()

    def _completed(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        if not self.scored:
            return []
        scores = np.concatenate(self.scored)
        done, offset = [], 0
        while self.waiting and offset + len(self.waiting[0][1]) <= len(scores):
            recording_id, starts = self.waiting.pop(0)
            done.append((recording_id, starts, scores[offset:offset + len(starts)]))
            offset += len(starts)
        self.scored = [scores[offset:]] if offset < len(scores) else []
        return done


def predict_recordings(model: keras.Model, paths: dict[str, Path], *, sample_rate: int, window_seconds: float,
                       hop_seconds: float, batch_size: int = 64,
                       progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Per-window scores of every recording: columns recording_id, start (s), end (s), s0..s23.

    Windows of consecutive recordings are packed into full batches (see WindowScorer), so no batch but the last is
    padded: 60 s recordings give 23 windows each at a 5 s window and 2.5 s hop, which a batch of 64 does not divide.
    """
    window_samples = samples(window_seconds, sample_rate)
    hop_samples = samples(hop_seconds, sample_rate)
    scorer = WindowScorer(model, batch_size)
    frames: list[pd.DataFrame] = []

    def collect(done: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        for recording_id, starts, scores in done:
            frame = pd.DataFrame(scores, columns=list(SPECIES_COLUMNS))
            frame.insert(0, "end", (starts + window_samples) / sample_rate)
            frame.insert(0, "start", starts / sample_rate)
            frame.insert(0, "recording_id", recording_id)
            frames.append(frame)
        if progress and done:
            progress(len(done))

    for recording_id, (_, audio) in zip(paths, decoded(paths.values(), sample_rate)):
        collect(scorer.add(recording_id, *sliding_windows(audio, window_samples, hop_samples)))
    collect(scorer.finish())
    return pd.concat(frames, ignore_index=True)
