"""The waveform cache returns exactly the samples the FLAC holds, with margins for random crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.data.audio import read_segment
from rfcx.data.cache import WaveformCache, build_cache
from rfcx.data.dataset import load_dataset, recording_path
from rfcx.data.folds import split_folds
from rfcx.data.windows import crop_windows


def built_cache(root: Path, tmp_path: Path, margin_seconds: float = 1.0) -> tuple[pd.DataFrame, WaveformCache]:
    dataset = load_dataset(root, check_audio=False)
    windows = crop_windows(dataset.tp, dataset.fp, split_folds(dataset.tp, dataset.fp, 2, 0), window_seconds=10.0)
    index = build_cache(windows, lambda rid: recording_path(root, "train", rid), tmp_path / "cache.npy",
                        margin_seconds=margin_seconds)
    return windows, WaveformCache(tmp_path / "cache.npy", index, window_samples=480_000)


def test_cached_windows_equal_the_decoded_recording(mini_dataset: Path, tmp_path: Path) -> None:
    windows, cache = built_cache(mini_dataset, tmp_path)
    assert cache.array.dtype == np.int16 and cache.span_samples == 12 * 48_000
    batch = cache.read(np.arange(len(windows)))
    for row, window in enumerate(windows.itertuples()):
        full = read_segment(recording_path(mini_dataset, "train", window.recording_id), dtype="float32")
        start = int(window.start * 48_000)
        np.testing.assert_array_equal(batch[row], full[start:start + 480_000])


def test_jitter_moves_the_crop_and_stays_inside_the_cached_span(mini_dataset: Path, tmp_path: Path) -> None:
    windows, cache = built_cache(mini_dataset, tmp_path)
    centred = cache.read(np.array([0]))
    shifted = cache.read(np.array([0]), jitter=np.array([4800]))
    np.testing.assert_array_equal(shifted[0, :-4800], centred[0, 4800:])
    far = cache.read(np.array([0, 0]), jitter=np.array([10**7, -10**7]))
    np.testing.assert_array_equal(far[0], cache.read(np.array([0]), jitter=np.array([96_000]))[0])
    np.testing.assert_array_equal(far[1], cache.read(np.array([0]), jitter=np.array([-cache.offsets[0]]))[0])


def test_a_window_at_the_end_of_the_recording_keeps_its_margin_inside(mini_dataset: Path, tmp_path: Path) -> None:
    windows, cache = built_cache(mini_dataset, tmp_path)
    last = int(np.flatnonzero(windows.end.to_numpy() == 60.0)[0])
    assert cache.offsets[last] == 2 * 48_000  # the span was moved left: the window sits at the span's end
    assert cache.index.span_start.iloc[last] == 48 * 48_000


def test_no_partial_file_is_left_behind(mini_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    built_cache(mini_dataset, out)
    assert sorted(p.name for p in out.iterdir()) == ["cache.npy"]
