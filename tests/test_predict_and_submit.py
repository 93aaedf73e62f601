"""Sliding windows over recordings, pooling, fold ensembling and the submission check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import FirstSampleModel
from rfcx.constants import SPECIES_COLUMNS, SUBMISSION_COLUMNS
from rfcx.prediction.predict import (
    WindowScorer,
    predict_batch,
    predict_cached_windows,
    sliding_windows,
    window_starts,
)
from rfcx.prediction.submission import check_submission, ensemble, make_submission, pool_recordings


def test_sliding_windows_cover_the_whole_recording_and_end_at_its_end() -> None:
    starts = window_starts(60 * 100, 10 * 100, 5 * 100)
    assert list(starts) == [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000]
    odd = window_starts(1234, 100, 300)
    assert odd[-1] + 100 == 1234 and odd[0] == 0 and np.all(np.diff(odd) <= 300)


def test_sliding_windows_hold_the_right_samples_and_pad_a_short_recording() -> None:
    audio = np.arange(1000, dtype=np.float32)
    starts, windows = sliding_windows(audio, 300, 250)
    for start, window in zip(starts, windows):
        np.testing.assert_array_equal(window, audio[start:start + 300])
    starts, windows = sliding_windows(audio[:120], 300, 250)
    assert list(starts) == [0] and windows.shape == (1, 300) and windows[0, 120:].sum() == 0


class RampCache:
    """A stand-in WaveformCache: window `row` of span `row` holds the samples 1000 * row + offset, 10-sample windows
    with a 4-sample margin each side, read with the same clamping to the span as the real cache."""

    window_samples, span_samples = 10, 18

    def read(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
        offsets = np.clip(4 + (0 if jitter is None else jitter), 0, self.span_samples - self.window_samples)
        offsets = np.broadcast_to(offsets, rows.shape)
        return np.stack([1000.0 * row + offset + np.arange(10) for row, offset in zip(rows, offsets)]).astype(np.float32)


def test_out_of_fold_windows_score_the_mean_of_their_shifted_crops() -> None:
    rows = np.array([3, 0, 7])
    centred = predict_cached_windows(FirstSampleModel(), RampCache(), rows, batch_size=2)
    np.testing.assert_array_equal(centred[:, 0], 1000.0 * rows + 4)
    averaged = predict_cached_windows(FirstSampleModel(), RampCache(), rows, batch_size=2, shifts_samples=(-4, 1, 4))
    np.testing.assert_allclose(averaged[:, 5], 1000.0 * rows + 4 + 1 / 3)  # crops at offsets 0, 5 and 8
    with pytest.raises(ValueError, match="exceed the cached margin of 4 samples"):
        predict_cached_windows(FirstSampleModel(), RampCache(), rows, shifts_samples=(0, 5))


def scores_frame(ids, values) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(values, dtype=float), columns=list(SPECIES_COLUMNS))
    frame.insert(0, "recording_id", ids)
    return frame


def test_a_recording_scores_the_max_or_mean_of_its_windows() -> None:
    per_window = scores_frame(["a", "a", "b"], [np.full(24, 0.1), np.full(24, 0.7), np.full(24, 0.3)])
    assert pool_recordings(per_window, "max").set_index("recording_id").loc["a", "s0"] == 0.7
    assert pool_recordings(per_window, "mean").set_index("recording_id").loc["a", "s5"] == pytest.approx(0.4)
    assert list(pool_recordings(per_window, "max").recording_id) == ["a", "b"]


def test_folds_ensemble_by_mean_probability_or_mean_rank() -> None:
    rng = np.random.default_rng(0)
    first = scores_frame(["a", "b", "c"], rng.random((3, 24)))
    second = scores_frame(["a", "b", "c"], rng.random((3, 24)))
    mean = ensemble([first, second], "mean")
    np.testing.assert_allclose(mean[list(SPECIES_COLUMNS)], (first.iloc[:, 1:] + second.iloc[:, 1:]) / 2)
    ranked = ensemble([first, second], "rank_mean")
    assert ranked[list(SPECIES_COLUMNS)].to_numpy().min() >= 0 and ranked[list(SPECIES_COLUMNS)].to_numpy().max() <= 1
    with pytest.raises(ValueError, match="different recordings"):
        ensemble([first, second.iloc[::-1]], "mean")


def test_the_submission_follows_sample_submission_exactly() -> None:
    sample = scores_frame(["c", "a", "b"], np.zeros((3, 24)))
    scores = scores_frame(["a", "b", "c", "extra"], np.arange(96).reshape(4, 24) / 100)
    submission = make_submission(scores, sample)
    assert tuple(submission.columns) == SUBMISSION_COLUMNS
    assert list(submission.recording_id) == ["c", "a", "b"]
    assert submission.loc[0, "s0"] == pytest.approx(0.48)


def test_a_submission_missing_a_recording_or_with_nan_is_refused() -> None:
    sample = scores_frame(["a", "b"], np.zeros((2, 24)))
    with pytest.raises(ValueError, match="no prediction for 1 test recording"):
        make_submission(scores_frame(["a"], np.zeros((1, 24))), sample)
    bad = scores_frame(["a", "b"], np.full((2, 24), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        check_submission(bad, sample)


def spied_model():
    """A small Keras model whose predict_on_batch records the size of every batch it is given."""
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    seen: list[int] = []
    original = model.predict_on_batch
    model.predict_on_batch = lambda batch: (seen.append(len(batch)), original(batch))[1]
    return model, seen, original


def test_a_short_last_batch_is_padded_to_the_compiled_shape_and_cut_back() -> None:
    model, seen, original = spied_model()
    windows = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    scores = predict_batch(model, windows, batch_size=16)
    assert seen == [16] and scores.shape == (5, 3) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.asarray(original(windows)), rtol=1e-5, atol=1e-6)


def test_recordings_are_scored_in_full_batches_across_recording_boundaries() -> None:
    model, seen, original = spied_model()
    rng = np.random.default_rng(0)
    recordings = {f"r{i}": rng.standard_normal((n, 8)).astype(np.float32) for i, n in enumerate((3, 6, 1, 5))}
    scorer = WindowScorer(model, batch_size=4)
    done = []
    for rid, windows in recordings.items():
        done += scorer.add(rid, np.arange(len(windows)), windows)
    assert [rid for rid, _, _ in done] == ["r0", "r1", "r2"]  # r3's last window waits for the final batch
    done += scorer.finish()
    assert [rid for rid, _, _ in done] == list(recordings)
    assert seen == [4, 4, 4, 4]  # 15 windows: three full batches, then one padded
    for rid, starts, scores in done:
        assert len(starts) == len(recordings[rid])
        np.testing.assert_allclose(scores, np.asarray(original(recordings[rid])), rtol=1e-5, atol=1e-6)


def test_a_recordings_truth_is_the_species_of_its_tp_boxes_in_the_order_asked() -> None:
    from rfcx.prediction.scoring import recording_truth

    tp = pd.DataFrame({"recording_id": ["a", "a", "b", "c", "a"], "species_id": [3, 7, 23, 0, 3]})
    truth = recording_truth(tp, ["b", "a", "d"])  # c is not asked for; d has no box (an fp-only recording)
    assert truth.shape == (3, 24) and truth.dtype == np.float32
    assert np.flatnonzero(truth[0]).tolist() == [23]
    assert np.flatnonzero(truth[1]).tolist() == [3, 7]
    assert not truth[2].any()
