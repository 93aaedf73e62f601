"""Training windows: centred on calls, clamped inside the recording, multi-labelled, with fp negatives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfcx.constants import BOX_COLUMNS
from rfcx.data.windows import WINDOW_COLUMNS, crop_windows, label_matrix


def boxes(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(BOX_COLUMNS))


def folds_for(*frames: pd.DataFrame) -> pd.DataFrame:
    ids = sorted(set().union(*(set(frame.recording_id) for frame in frames)))
    return pd.DataFrame({"recording_id": ids, "fold": np.arange(len(ids)) % 2})


def windows_of(tp: pd.DataFrame, fp: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return crop_windows(tp, fp, folds_for(tp, fp), **kwargs)


def test_a_window_is_centred_on_its_call() -> None:
    tp = boxes(("r1", 4, 1, 20.0, 1000.0, 23.0, 2000.0))
    [window] = windows_of(tp, tp.iloc[:0]).itertuples()
    assert (window.start, window.end) == (16.5, 26.5)


@pytest.mark.parametrize("t_min, t_max, start", [(0.2, 1.0, 0.0), (58.5, 59.9, 50.0), (59.0, 60.0, 50.0)])
def test_windows_are_clamped_inside_the_recording(t_min: float, t_max: float, start: float) -> None:
    tp = boxes(("r1", 0, 1, t_min, 1000.0, t_max, 2000.0))
    [window] = windows_of(tp, tp.iloc[:0]).itertuples()
    assert (window.start, window.end) == (start, start + 10.0)


def test_every_species_whose_call_overlaps_enough_is_a_label() -> None:
    tp = boxes(
        ("r1", 2, 1, 20.0, 1000.0, 22.0, 2000.0),   # anchor of window 0: [16, 26]
        ("r1", 5, 1, 24.0, 3000.0, 26.0, 4000.0),   # fully inside window 0
        ("r1", 7, 1, 25.0, 3000.0, 29.0, 4000.0),   # 1 s of 4 s inside window 0: below 0.5
        ("r2", 9, 1, 5.0, 3000.0, 6.0, 4000.0),     # other recording: never in r1's windows
    )
    windows = windows_of(tp, tp.iloc[:0])
    first = windows[(windows.recording_id == "r1") & (windows.species_id == 2)].iloc[0]
    assert set(np.flatnonzero(first.labels)) == {2, 5}
    assert set(np.flatnonzero(windows_of(tp, tp.iloc[:0], min_box_overlap=0.25)
                              .query("recording_id == 'r1' and species_id == 2").iloc[0].labels)) == {2, 5, 7}
    assert len(windows) == 4


def test_fp_boxes_mark_known_negatives_unless_the_species_is_present() -> None:
    tp = boxes(("r1", 2, 1, 20.0, 1000.0, 22.0, 2000.0))
    fp = boxes(("r1", 11, 1, 19.0, 1000.0, 21.0, 2000.0),
               ("r1", 2, 1, 23.0, 1000.0, 24.0, 2000.0),     # same species as a tp: stays a label
               ("r1", 13, 1, 40.0, 1000.0, 41.0, 2000.0))    # outside the window
    [window] = windows_of(tp, fp).itertuples()
    assert set(np.flatnonzero(window.negatives)) == {11}
    assert set(np.flatnonzero(window.labels)) == {2}


def test_fp_windows_are_optional_hard_negatives() -> None:
    tp = boxes(("r1", 2, 1, 20.0, 1000.0, 22.0, 2000.0))
    fp = boxes(*[(f"f{i}", i % 24, 1, 5.0 + i, 1000.0, 6.0 + i, 2000.0) for i in range(40)])
    assert len(windows_of(tp, fp)) == 1
    with_fp = windows_of(tp, fp, fp_window_fraction=0.5, seed=0)
    negatives_only = with_fp[with_fp.source == "fp"]
    assert 10 <= len(negatives_only) <= 30
    assert label_matrix(negatives_only).sum() == 0
    assert all(row.negatives[row.species_id] == 1 for row in negatives_only.itertuples())
    pd.testing.assert_frame_equal(with_fp, windows_of(tp, fp, fp_window_fraction=0.5, seed=0))


def test_the_schema_round_trips_through_parquet(tmp_path) -> None:
    tp = boxes(("r1", 2, 1, 20.0, 1000.0, 22.0, 2000.0), ("r2", 3, 1, 1.0, 1000.0, 2.0, 2000.0))
    windows = windows_of(tp, tp.iloc[:0])
    windows.to_parquet(tmp_path / "windows.parquet")
    back = pd.read_parquet(tmp_path / "windows.parquet")
    assert tuple(back.columns) == WINDOW_COLUMNS
    assert (back.window_id == np.arange(len(back))).all()
    np.testing.assert_array_equal(label_matrix(back), label_matrix(windows))
    assert label_matrix(back).shape == (2, 24)
