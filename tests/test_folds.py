"""Folds are per recording, stratified by species, and reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfcx.constants import BOX_COLUMNS, N_SPECIES
from rfcx.data.folds import split_folds


def random_boxes(n_recordings: int, seed: int, fp: bool = False) -> pd.DataFrame:
    """1-3 boxes per recording with skewed species frequencies, like the real data."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.3, 3.0, N_SPECIES)
    rows = []
    for index in range(n_recordings):
        for _ in range(rng.integers(1, 4)):
            t_min = rng.uniform(0, 55)
            rows.append((f"{'f' if fp else 'r'}{index:05d}", int(rng.choice(N_SPECIES, p=weights / weights.sum())),
                         1, t_min, 1000.0, t_min + 2, 3000.0))
    return pd.DataFrame(rows, columns=list(BOX_COLUMNS))


@pytest.fixture
def boxes() -> tuple[pd.DataFrame, pd.DataFrame]:
    tp = random_boxes(240, seed=1)
    fp = pd.concat([random_boxes(60, seed=2, fp=True), tp.sample(40, random_state=0)], ignore_index=True)
    return tp, fp


def test_a_recording_never_lands_in_two_folds(boxes) -> None:
    tp, fp = boxes
    folds = split_folds(tp, fp, n_folds=5, seed=0)
    assert folds.recording_id.is_unique
    assert set(folds.recording_id) == set(tp.recording_id) | set(fp.recording_id)
    assert set(folds.fold) == set(range(5))


def test_every_species_is_validated_in_every_fold_where_it_can_be(boxes) -> None:
    tp, fp = boxes
    folds = split_folds(tp, fp, n_folds=5, seed=0)
    with_fold = tp.merge(folds, on="recording_id")
    for species, group in with_fold.groupby("species_id"):
        if group.recording_id.nunique() >= 5:
            assert set(group.fold) == set(range(5)), f"species {species} missing from a fold"


def test_folds_are_balanced_in_size(boxes) -> None:
    tp, fp = boxes
    sizes = split_folds(tp, fp, n_folds=5, seed=0).fold.value_counts()
    assert sizes.max() - sizes.min() <= 0.2 * sizes.mean()


def test_the_same_seed_gives_the_same_folds_and_another_seed_other_folds(boxes) -> None:
    tp, fp = boxes
    first = split_folds(tp, fp, n_folds=5, seed=3)
    pd.testing.assert_frame_equal(first, split_folds(tp, fp, n_folds=5, seed=3))
    assert not first.equals(split_folds(tp, fp, n_folds=5, seed=4))


def test_too_few_recordings_for_the_folds_is_an_error() -> None:
    tp = random_boxes(3, seed=0)
    with pytest.raises(ValueError, match="cannot be split into 5 folds"):
        split_folds(tp, tp.iloc[:0], n_folds=5, seed=0)
