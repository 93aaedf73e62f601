"""Frame-wise (SED) training: frame targets land on the frames a box covers (after the random crop), the masked
frame loss ignores unknown frames, and the sed head trains for real and reloads as a clip-level detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfcx.data.windows import crop_windows
from rfcx.model.losses import masked_frame_crossentropy
from rfcx.training.loader import FrameBoxes, WindowBatches
from conftest import LIGHT, small_config


def boxes(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max",
                                       "f_max"])


def one_window(species, start, end, positive, window_seconds=4.0, n_frames=4) -> FrameBoxes:
    return FrameBoxes([np.array(species)], [np.array(start, float)], [np.array(end, float)],
                      [np.array(positive, np.int8)], window_seconds, n_frames)


def test_a_tp_box_marks_the_frames_it_covers_and_nothing_else_is_known() -> None:
    targets = one_window([3], [1.2], [2.9], [1]).targets(np.array([0]))[0]  # frames of 1 s: [0,1) [1,2) [2,3) [3,4)
    assert targets.shape == (4, 24)
    np.testing.assert_array_equal(targets[:, 3], [-1, 1, 1, -1])
    assert (np.delete(targets, 3, axis=1) == -1).all()  # unlabelled audio is never a negative


def test_an_fp_box_marks_known_absent_frames_unless_a_tp_box_of_the_species_is_there() -> None:
    targets = one_window([5, 5, 7], [0.0, 1.0, 2.0], [2.0, 2.0, 3.0], [0, 1, 0]).targets(np.array([0]))[0]
    np.testing.assert_array_equal(targets[:, 5], [0, 1, -1, -1])
    np.testing.assert_array_equal(targets[:, 7], [-1, -1, 0, -1])


def test_a_box_barely_touching_a_frame_does_not_cover_it_and_a_shifted_crop_moves_the_targets() -> None:
    frames = one_window([2], [0.9], [2.0], [1])
    np.testing.assert_array_equal(frames.targets(np.array([0]))[0, :, 2], [-1, 1, -1, -1])
    # the crop starts 1 s later: the box now lies in frame 0
    np.testing.assert_array_equal(frames.targets(np.array([0]), np.array([1.0]))[0, :, 2], [1, -1, -1, -1])


def test_windows_store_nearby_boxes_relative_to_their_start() -> None:
    tp = boxes(("r1", 2, 1, 20.0, 1000.0, 22.0, 2000.0))
    fp = boxes(("r1", 4, 1, 23.0, 1000.0, 24.0, 2000.0), ("r1", 4, 1, 50.0, 1000.0, 51.0, 2000.0))
    windows = crop_windows(tp, fp, pd.DataFrame({"recording_id": ["r1"], "fold": [0]}), window_seconds=10.0)
    row = windows.iloc[0]
    assert row.start == 16.0
    assert list(row.box_species) == [2, 4] and list(row.box_positive) == [1, 0]  # the box at 50 s is too far
    np.testing.assert_allclose(row.box_start, [4.0, 7.0])
    np.testing.assert_allclose(row.box_end, [6.0, 8.0])


def test_the_frame_loss_ignores_unknown_frames_and_examples_without_known_frames() -> None:
    targets = np.full((2, 3, 24), -1.0, np.float32)
    targets[0, 1, 4] = 1.0
    scores = np.random.default_rng(0).uniform(0.05, 0.95, (2, 3, 24)).astype(np.float32)
    loss = float(masked_frame_crossentropy(targets, scores))
    assert loss == pytest.approx(-np.log(scores[0, 1, 4]) / 2, rel=1e-4)  # example 1 has none: contributes 0
    changed = scores.copy()
    changed[targets < 0] = 0.5
    assert float(masked_frame_crossentropy(targets, changed)) == pytest.approx(loss, rel=1e-5)


def test_the_loader_feeds_frame_targets_that_follow_the_crop(windows_and_cache) -> None:
    windows, cache = windows_and_cache
    boxes_ = FrameBoxes([np.array([1])] * 16, [np.array([0.25])] * 16, [np.array([0.5])] * 16,
                        [np.array([1], np.int8)] * 16, 1.0, 4)
    batches = WindowBatches(cache, np.arange(16), np.zeros((16, 24), np.float32), 4, shuffle=True, seed=0,
                            jitter_samples=12_000, frame_boxes=boxes_)
    inputs, targets = batches[0]
    assert set(inputs) == {"waveform", "frame_targets"} and inputs["frame_targets"].shape == (4, 4, 24)
    rng = np.random.default_rng([0, 0, 0])
    shift = rng.integers(-12_000, 12_001, size=4) / 48_000  # the jitter the batch drew, in seconds
    expected = boxes_.targets(batches.order[:4], shift)
    np.testing.assert_array_equal(inputs["frame_targets"], expected)


@pytest.mark.parametrize("pooling", ["max", "attention"])
def test_the_sed_head_trains_and_reloads_as_a_clip_level_detector(windows_and_cache, tmp_path, pooling) -> None:
    from rfcx.model.detector import load_detector
    from rfcx.pipeline.config import load_config
    from rfcx.training.train import train_fold

    windows, cache = windows_and_cache
    windows = windows.assign(box_species=[np.array([s]) for s in windows.species_id],
                             box_start=[np.array([0.0])] * len(windows), box_end=[np.array([1.0])] * len(windows),
                             box_positive=[np.array([1], np.int8)] * len(windows))
    base = small_config(LIGHT, epochs=2, steps_per_epoch=4)
    config = load_config(None, {**base, "model": {**base["model"], "head": "sed", "sed_pooling": pooling}})
    history = train_fold(windows, cache, config, fold=0, out_dir=tmp_path)
    assert np.isfinite(history.loss).all() and history.loss.iloc[-1] < history.loss.iloc[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "model.keras"]
    model = load_detector(tmp_path / "model.keras")
    assert len(model.inputs) == 1 and "frame_loss" not in {layer.name for layer in model.layers}
    scores = np.asarray(model.predict_on_batch(cache.read(np.arange(4))))
    assert scores.shape == (4, 24) and np.all((scores >= 0) & (scores <= 1))
