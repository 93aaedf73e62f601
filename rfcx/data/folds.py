"""Cross-validation folds over recordings.

Folds are assigned per recording, never per row: two calls from the same recording share background, device and
weather, so splitting rows (as the reference recipe did) leaks the validation recording into training and inflates
the score. Within that constraint folds are stratified by species so each fold validates every species it can.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from rfcx.constants import N_SPECIES

#: Stratum of recordings that only have false-positive boxes.
_NO_TRUE_POSITIVE = N_SPECIES


def split_folds(tp: pd.DataFrame, fp: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Assign every train recording with a box to one of `n_folds` folds.

    StratifiedGroupKFold groups by recording_id and stratifies by the species of each true-positive box; recordings
    with only false-positive boxes form one more stratum so they spread evenly too. Returns a frame
    (recording_id, fold) sorted by recording_id; deterministic for a given seed.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    tp_ids = set(tp.recording_id)
    fp_only = sorted(set(fp.recording_id) - tp_ids)
    rows = pd.concat([
        tp[["recording_id", "species_id"]],
        pd.DataFrame({"recording_id": fp_only, "species_id": _NO_TRUE_POSITIVE}),
    ], ignore_index=True).sort_values(["recording_id", "species_id"], kind="stable").reset_index(drop=True)
    n_groups = rows.recording_id.nunique()
    if n_groups < n_folds:
        raise ValueError(f"{n_groups} recordings cannot be split into {n_folds} folds")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of: dict[str, int] = {}
    for fold, (_, validation_rows) in enumerate(splitter.split(rows, rows.species_id, groups=rows.recording_id)):
        for recording_id in rows.recording_id.iloc[validation_rows].unique():
            fold_of[recording_id] = fold
    folds = pd.DataFrame({"recording_id": sorted(fold_of)})
    folds["fold"] = folds.recording_id.map(fold_of).astype(np.int64)
    return folds
