"""Reading a training batch: the waveform cache versus the reference way (decode the whole 60 s FLAC, then crop).

Both paths read the same windows of the same dataset in one run, so the ratio is immune to how busy the machine is.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.constants import SAMPLE_RATE
from rfcx.data.audio import int16_to_float, read_segment
from rfcx.data.cache import WaveformCache, build_cache
from rfcx.data.dataset import load_dataset, recording_path
from rfcx.data.folds import split_folds
from rfcx.data.windows import crop_windows

WINDOW_SECONDS = 10.0


def read_like_the_reference(root: Path, windows: pd.DataFrame) -> np.ndarray:
    """Decode each window's whole recording, then crop: what the reference generator did per sample."""
    length = int(WINDOW_SECONDS * SAMPLE_RATE)
    batch = []
    for window in windows.itertuples():
        audio = read_segment(recording_path(root, "train", window.recording_id))
        start = int(round(window.start * SAMPLE_RATE))
        batch.append(int16_to_float(audio[start:start + length]))
    return np.stack(batch)


def best_of(repeats: int, function) -> float:
    """Fastest of `repeats` timings (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def run(data_dir: str | Path, *, batch_size: int = 32, repeats: int = 5, work_dir: str | Path | None = None) -> dict:
    """Build a cache of the dataset's tp windows, then time random batches both ways; print and return the ratio."""
    root = Path(data_dir)
    dataset = load_dataset(root, check_audio=False)
    windows = crop_windows(dataset.tp, dataset.fp, split_folds(dataset.tp, dataset.fp, 2, 0),
                           window_seconds=WINDOW_SECONDS)
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        index = build_cache(windows, lambda rid: recording_path(root, "train", rid), Path(scratch) / "cache.npy")
        cache = WaveformCache(Path(scratch) / "cache.npy", index, int(WINDOW_SECONDS * SAMPLE_RATE))
        rows = np.random.default_rng(0).choice(len(windows), size=min(batch_size, len(windows)), replace=False)
        from_cache = cache.read(rows)
        reference = read_like_the_reference(root, windows.iloc[rows])
        if not np.array_equal(from_cache, reference):
            raise AssertionError("the cache and the reference path read different samples")
        cached_seconds = best_of(repeats, lambda: cache.read(rows))
        reference_seconds = best_of(max(1, repeats // 2), lambda: read_like_the_reference(root, windows.iloc[rows]))
    result = {"batch_size": len(rows), "cache_seconds": cached_seconds, "reference_seconds": reference_seconds,
              "ratio": reference_seconds / cached_seconds}
    print(f"batch of {len(rows)} windows: cache {cached_seconds * 1e3:.2f} ms, whole-FLAC decode + crop "
          f"{reference_seconds * 1e3:.1f} ms -> cache is {result['ratio']:.0f}x faster")
    return result
