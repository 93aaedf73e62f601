"""Scores people read: out-of-fold LWLRAP overall, per fold and per species, and the test score when truth is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.model.metrics import lwlrap, per_class_lwlrap


def score_table(truth: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Overall and per-species LWLRAP (with each species' weight) of one set of predictions."""
    per_class, weights = per_class_lwlrap(truth, scores)
    return {
        "lwlrap": float(lwlrap(truth, scores)),
        "n": int(len(truth)),
        "per_species": {f"s{index}": (None if np.isnan(per_class[index]) else float(per_class[index]))
                        for index in range(N_SPECIES)},
        "species_weight": {f"s{index}": float(weights[index]) for index in range(N_SPECIES)},
    }


def recording_truth(tp: pd.DataFrame, recording_ids: list[str] | np.ndarray) -> np.ndarray:
    """(recordings, species) 0/1: 1 where the recording has a tp box of the species. The truth of a whole-recording
    score of training audio; on data whose train recordings are not exhaustively boxed (the Kaggle data: some calls
    carry no box), an unboxed call counts as absent, so a score against it is a lower bound."""
    row = {recording_id: index for index, recording_id in enumerate(recording_ids)}
    truth = np.zeros((len(row), N_SPECIES), dtype=np.float32)
    boxed = tp[tp.recording_id.isin(row)]
    truth[boxed.recording_id.map(row).to_numpy(dtype=int), boxed.species_id.to_numpy(dtype=int)] = 1.0
    return truth


def score_oof(oof: pd.DataFrame) -> dict[str, Any]:
    """OOF scores from a frame with fold, label columns t0..t23 and score columns s0..s23 (one row per window, or per
    whole recording)."""
    truth_columns = list(TARGET_COLUMNS)
    scores = oof[list(SPECIES_COLUMNS)].to_numpy()
    truth = oof[truth_columns].to_numpy()
    result = score_table(truth, scores)
    result["per_fold"] = {int(fold): float(lwlrap(group[truth_columns].to_numpy(),
                                                   group[list(SPECIES_COLUMNS)].to_numpy()))
                          for fold, group in oof.groupby("fold")}
    return result


def score_submission(submission: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Test LWLRAP of a submission against a truth table with the same columns (recording_id, s0..s23)."""
    aligned = truth.set_index("recording_id").loc[submission.recording_id, list(SPECIES_COLUMNS)]
    return score_table(aligned.to_numpy(), submission[list(SPECIES_COLUMNS)].to_numpy())
