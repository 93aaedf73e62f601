"""Pseudo-labels for the second stage: confident windows only, soft targets, never over a labelled box of the same
species, never from or for the fold being validated; one loader over the labelled and pseudo-labelled caches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfcx.constants import BOX_COLUMNS, SPECIES_COLUMNS
from rfcx.data.cache import StackedCache, WaveformCache, build_cache
from rfcx.data.windows import WINDOW_COLUMNS
from rfcx.training.pseudo import TARGET_COLUMNS, labelled_species, pseudo_label, with_pseudo_windows

FOLDS = pd.DataFrame({"recording_id": ["r0", "r1", "r2"], "fold": [0, 1, 1]})
TP = pd.DataFrame([("r1", 3, 1, 11.0, 1000.0, 13.0, 2000.0)], columns=list(BOX_COLUMNS))
FP = pd.DataFrame([("r2", 8, 1, 1.0, 1000.0, 2.0, 2000.0)], columns=list(BOX_COLUMNS))
SETTINGS = {"threshold": 0.9, "low_threshold": 0.05, "max_windows": 0, "min_box_overlap": 0.5}


def window_scores(rows: list[tuple[str, float, dict[int, float]]], background: float = 0.01) -> pd.DataFrame:
    """Scores of 5 s windows: (recording, start, {species: score}) with every other species at `background`."""
    values = np.full((len(rows), len(SPECIES_COLUMNS)), background)
    for row, (_, _, scores) in enumerate(rows):
        for species, score in scores.items():
            values[row, species] = score
    frame = pd.DataFrame(values, columns=list(SPECIES_COLUMNS))
    frame.insert(0, "end", [start + 5.0 for _, start, _ in rows])
    frame.insert(0, "start", [start for _, start, _ in rows])
    frame.insert(0, "recording_id", [rid for rid, _, _ in rows])
    return frame


def test_confident_windows_become_soft_targets_and_the_rest_is_unknown_or_dropped() -> None:
    scores = window_scores([("r1", 0.0, {2: 0.95, 4: 0.5}),   # a confident call, one species unsure
                            ("r1", 20.0, {}),                  # confidently empty
                            ("r2", 30.0, {6: 0.6}),            # unsure: dropped
                            ("r2", 40.0, {5: 0.99})])          # the most confident call
    pseudo = pseudo_label(scores, TP, FP, FOLDS, fold=0, **SETTINGS)
    assert list(zip(pseudo.recording_id, pseudo.start)) == [("r2", 40.0), ("r1", 0.0), ("r1", 20.0)]
    assert set(WINDOW_COLUMNS) <= set(pseudo.columns) and (pseudo.source == "pseudo").all()
    assert list(pseudo.window_id) == [0, 1, 2] and list(pseudo.species_id) == [5, 2, -1]
    assert list(pseudo.fold) == [1, 1, 1]
    call = pseudo.iloc[1]
    assert call["t2"] == pytest.approx(0.95) and call["t4"] == -1 and call["t0"] == pytest.approx(0.01)
    assert (pseudo.iloc[2][list(TARGET_COLUMNS)] == pytest.approx(0.01)).all()
    capped = pseudo_label(scores, TP, FP, FOLDS, fold=0, **{**SETTINGS, "max_windows": 2})
    assert list(capped.start) == [40.0, 0.0]


def test_a_species_is_never_pseudo_labelled_over_its_own_labelled_box() -> None:
    # r1 has a tp box of species 3 at 11-13 s, r2 an fp box of species 8 at 1-2 s
    scores = window_scores([("r1", 10.0, {3: 0.97, 7: 0.93}), ("r2", 0.0, {8: 0.99}), ("r1", 40.0, {3: 0.97})])
    pseudo = pseudo_label(scores, TP, FP, FOLDS, fold=0, **SETTINGS).set_index(["recording_id", "start"])
    assert pseudo.loc[("r1", 10.0), "t3"] == -1 and pseudo.loc[("r1", 10.0), "t7"] == pytest.approx(0.93)
    assert pseudo.loc[("r1", 10.0), "species_id"] == 7  # the call it is kept for is the unlabelled one
    # its only confident call is the labelled species: kept as an empty window, that species left to the truth
    assert pseudo.loc[("r2", 0.0), "species_id"] == -1 and pseudo.loc[("r2", 0.0), "t8"] == -1
    assert pseudo.loc[("r1", 40.0), "t3"] == pytest.approx(0.97)  # away from the box: fair game
    flat = pseudo.reset_index()
    labelled = dict(zip(zip(flat.recording_id, flat.start), labelled_species(flat)))
    assert labelled["r1", 10.0][3] and not labelled["r1", 10.0][7] and labelled["r2", 0.0][8]
    assert not labelled["r1", 40.0].any()


def test_the_validated_folds_recordings_are_never_pseudo_labelled_for_it() -> None:
    scores = window_scores([("r0", 0.0, {1: 0.99})])
    with pytest.raises(ValueError, match="fold 0's own recordings"):
        pseudo_label(scores, TP, FP, FOLDS, fold=0, **SETTINGS)
    with pytest.raises(ValueError, match="low_threshold < threshold"):
        pseudo_label(scores, TP, FP, FOLDS, fold=1, **{**SETTINGS, "low_threshold": 0.95})


def test_one_cache_reads_labelled_and_pseudo_labelled_windows(mini_dataset, tmp_path) -> None:
    from rfcx.data.dataset import recording_path

    def cache_of(windows: pd.DataFrame, name: str) -> WaveformCache:
        index = build_cache(windows, lambda rid: recording_path(mini_dataset, "train", rid), tmp_path / name,
                            margin_seconds=0.5, sample_rate=48_000)
        return WaveformCache(tmp_path / name, index, 48_000)

    labelled = pd.DataFrame({"window_id": [0, 1], "recording_id": ["aa0000001", "aa0000002"],
                             "start": [29.5, 0.0], "end": [30.5, 1.0]})
    pseudo = pd.DataFrame({"window_id": [0, 1, 2], "recording_id": ["aa0000003", "aa0000001", "aa0000004"],
                           "start": [10.0, 20.0, 58.0], "end": [11.0, 21.0, 59.0]})
    first, second = cache_of(labelled, "labelled.npy"), cache_of(pseudo, "pseudo.npy")
    stacked, moved = with_pseudo_windows(first, pseudo, second)
    assert list(moved.window_id) == [2, 3, 4]
    rows, jitter = np.array([4, 0, 2, 1, 3]), np.array([100, -50, 0, 7, -300])
    got = stacked.read(rows, jitter)
    expected = {0: first.read(np.array([0]), jitter[[1]]), 1: first.read(np.array([1]), jitter[[3]]),
                2: second.read(np.array([0]), jitter[[2]]), 3: second.read(np.array([1]), jitter[[4]]),
                4: second.read(np.array([2]), jitter[[0]])}
    for position, row in enumerate(rows):
        np.testing.assert_array_equal(got[position], expected[row][0])
    empty = cache_of(pseudo.iloc[:0], "empty.npy")
    assert StackedCache([first, empty]).offsets.tolist() == first.offsets.tolist()


def test_stage_two_trains_on_the_pseudo_windows_and_validates_on_labelled_windows_only() -> None:
    from rfcx.data.windows import crop_windows
    from rfcx.pipeline.config import load_config
    from rfcx.training.fold_data import fold_datasets

    tp = pd.concat([TP, TP.assign(recording_id="r0", species_id=1)], ignore_index=True)
    windows = crop_windows(tp, FP, FOLDS, window_seconds=5.0)
    pseudo = pseudo_label(window_scores([("r1", 30.0, {2: 0.95}), ("r2", 20.0, {})]), tp, FP, FOLDS, fold=0,
                          **SETTINGS)
    pseudo = pseudo.assign(window_id=pseudo.window_id + len(windows))  # as with_pseudo_windows numbers them
    config = load_config(None)
    train, validation = fold_datasets(windows, None, config, fold=0, pseudo=pseudo)
    assert list(validation.rows) == list(windows.window_id[windows.fold == 0])
    assert set(pseudo.window_id) <= set(train.rows) and not set(pseudo.window_id) & set(validation.rows)
    soft = train.targets[np.isin(train.rows, pseudo.window_id)]
    np.testing.assert_allclose(soft, pseudo[list(TARGET_COLUMNS)].to_numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="would leak"):
        fold_datasets(windows, None, config, fold=1, pseudo=pseudo)
