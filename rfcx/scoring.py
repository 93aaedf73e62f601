"""Scores people read: out-of-fold LWLRAP overall, per fold and per species, and the test score when truth is known."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.metrics import lwlrap, per_class_lwlrap


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


def score_oof(oof: pd.DataFrame) -> dict[str, Any]:
    """OOF scores from a frame with fold, label columns t0..t23 and score columns s0..s23 (one row per window)."""
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
