"""Pooling windows into recordings, fold ensembling and the Kaggle submission file, checked against
sample_submission.csv before it is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from rfcx.constants import SPECIES_COLUMNS, SUBMISSION_COLUMNS

#: How a recording's window scores become its score (predict.pooling), and how folds are combined (ensemble.method).
POOLINGS: tuple[str, ...] = ("max", "mean")
ENSEMBLE_METHODS: tuple[str, ...] = ("mean", "rank_mean")


def ensemble(fold_scores: list[pd.DataFrame], method: str = "mean") -> pd.DataFrame:
    """Combine recording-level scores of several models (same recordings): mean probability, or mean of per-species
    ranks scaled to [0, 1] (robust when folds are calibrated differently; LWLRAP only sees ranks within a row, but
    rank-averaging across recordings still evens out fold scales)."""
    if not fold_scores:
        raise ValueError("no fold predictions to ensemble")
    ids = fold_scores[0].recording_id.to_numpy()
    stacked = []
    for frame in fold_scores:
        if not np.array_equal(frame.recording_id.to_numpy(), ids):
            raise ValueError("fold predictions cover different recordings or orders")
        values = frame[list(SPECIES_COLUMNS)].to_numpy(dtype=np.float64)
        if method == "rank_mean":
            values = (rankdata(values, axis=0) - 1) / max(len(values) - 1, 1)
        elif method != "mean":
            raise ValueError(f"unknown ensemble method {method!r}")
        stacked.append(values)
    combined = pd.DataFrame(np.mean(stacked, axis=0), columns=list(SPECIES_COLUMNS))
    combined.insert(0, "recording_id", ids)
    return combined


def pool_recordings(window_scores: pd.DataFrame, pooling: str) -> pd.DataFrame:
    """Recording-level scores (recording_id, s0..s23) from per-window scores, in first-seen order: max (a call
    anywhere in the recording means the species is present) or mean over the recording's windows."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}")
    grouped = window_scores.groupby("recording_id", sort=False)[list(SPECIES_COLUMNS)]
    return getattr(grouped, pooling)().reset_index()


def make_submission(scores: pd.DataFrame, sample_submission: pd.DataFrame) -> pd.DataFrame:
    """Scores laid out exactly as sample_submission: same rows, same order, same columns, finite values."""
    missing = sorted(set(sample_submission.recording_id) - set(scores.recording_id))
    if missing:
        raise ValueError(f"no prediction for {len(missing)} test recording(s), e.g. {missing[:5]}")
    submission = scores.set_index("recording_id").loc[sample_submission.recording_id, list(SPECIES_COLUMNS)]
    submission = submission.reset_index()
    check_submission(submission, sample_submission)
    return submission


def check_submission(submission: pd.DataFrame, sample_submission: pd.DataFrame) -> None:
    """Raise ValueError unless the submission matches sample_submission's columns and rows and has finite scores."""
    if tuple(submission.columns) != SUBMISSION_COLUMNS:
        raise ValueError(f"submission columns {list(submission.columns)} differ from {list(SUBMISSION_COLUMNS)}")
    if not np.array_equal(submission.recording_id.to_numpy(), sample_submission.recording_id.to_numpy()):
        raise ValueError("submission rows differ from sample_submission's rows or order")
    values = submission[list(SPECIES_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("submission has non-finite scores")
