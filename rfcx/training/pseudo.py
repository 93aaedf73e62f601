"""Pseudo-labels: soft targets for the unlabelled audio of the train recordings, for a second training stage.

Only a few seconds of each train recording carry a box; the rest is audio the first stage never learns from. A
stage-1 model scores sliding windows over it, and the windows it is confident about become extra training windows:
a species scored at or above `threshold` (a confident call) or at or below `low_threshold` (a confident absence)
gets that probability as a soft target; any species in between is unknown (-1, out of the masked loss), so the
confidence of a pseudo-label decides whether it is learnt from at all. A window is kept when its best species is a
confident call, or when every species is confidently absent. A species with a labelled tp or fp box overlapping
the window is never pseudo-labelled there (-1): the labelled windows teach it with the truth.

Leakage: stage-2 fold k is scored on fold k's recordings, so nothing derived from them may reach its training. Its
pseudo-labels therefore all come from the stage-1 model of fold k (the one model that never saw fold k), over the
recordings of the other folds (which stage-2 fold k trains on anyway); fold k's recordings get none. Using fold j's
own (out-of-fold) model for fold j's recordings instead would hand stage-2 fold k the predictions of models that were
trained on fold k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.windows import windows_table


def labelled_species(windows: pd.DataFrame) -> np.ndarray:
    """(n, 24) bool: species with a tp or fp box overlapping each window (from the table's nearby-box columns)."""
    labelled = np.zeros((len(windows), N_SPECIES), dtype=bool)
    lengths = (windows.end - windows.start).to_numpy()
    for row, (species, start, end) in enumerate(zip(windows.box_species, windows.box_start, windows.box_end)):
        overlapping = (np.asarray(end) > 0) & (np.asarray(start) < lengths[row])
        labelled[row, np.asarray(species, dtype=np.int64)[overlapping]] = True
    return labelled


def pseudo_label(window_scores: pd.DataFrame, tp: pd.DataFrame, fp: pd.DataFrame, folds: pd.DataFrame, *,
                 fold: int, threshold: float, low_threshold: float, max_windows: int,
                 min_box_overlap: float) -> pd.DataFrame:
    """The pseudo-labelled windows for stage-2 fold `fold`, from the stage-1 fold-`fold` model's `window_scores`
    (recording_id, start, end, s0..s23) over the other folds' recordings: the windows table (rfcx.data.windows schema,
    source "pseudo") plus soft targets t0..t23. Windows with a confident call come first (best first), then
    confidently empty ones (emptiest first), at most `max_windows` in all (0 = no limit)."""
    if not 0 <= low_threshold < threshold <= 1:
        raise ValueError(f"need 0 <= low_threshold < threshold <= 1, got {low_threshold} and {threshold}")
    fold_of = folds.set_index("recording_id").fold
    if (window_scores.recording_id.map(fold_of) == fold).any():
        raise ValueError(f"scores of fold {fold}'s own recordings cannot pseudo-label its stage-2 training")
    anchor = window_scores[["recording_id", "start", "end"]].assign(source="pseudo", species_id=-1)
    table = windows_table(anchor, tp, fp, folds, min_box_overlap)
    scores = window_scores[list(SPECIES_COLUMNS)].to_numpy(dtype=np.float64)
    labelled = labelled_species(table)
    best = np.where(labelled, -np.inf, scores).max(axis=1)  # the best species not labelled in the window
    calling = best >= threshold
    empty = np.isfinite(best) & (best <= low_threshold)
    order = np.concatenate([np.flatnonzero(calling)[np.argsort(-best[calling], kind="stable")],
                            np.flatnonzero(empty)[np.argsort(best[empty], kind="stable")]])
    if max_windows:
        order = order[:max_windows]
    confident = (scores >= threshold) | (scores <= low_threshold)
    targets = np.where(confident & ~labelled, scores, -1.0).astype(np.float32)
    kept = table.iloc[order].reset_index(drop=True)
    kept["window_id"] = np.arange(len(kept), dtype=np.int64)
    kept["species_id"] = np.where(calling[order], np.where(labelled, -np.inf, scores)[order].argmax(axis=1), -1)
    return pd.concat([kept, pd.DataFrame(targets[order], columns=list(TARGET_COLUMNS))], axis=1)


def pseudo_targets(pseudo: pd.DataFrame) -> np.ndarray:
    """(n, 24) float32 training targets of pseudo-labelled windows: soft targets, -1 where unknown."""
    return pseudo[list(TARGET_COLUMNS)].to_numpy(dtype=np.float32)


def with_pseudo_windows(cache: WaveformCache, pseudo: pd.DataFrame,
                        pseudo_cache: WaveformCache) -> tuple[StackedCache, pd.DataFrame]:
    """One cache over the training windows and then the pseudo-labelled ones, and the pseudo windows with their
    window_id moved past the training windows' rows, so one loader feeds both."""
    stacked = StackedCache([cache, pseudo_cache])
    return stacked, pseudo.assign(window_id=pseudo.window_id.to_numpy() + len(cache.offsets))
