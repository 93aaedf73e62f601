"""The probe's settings side by side, out of fold, on a finished run's embeddings (no re-embedding, no test truth).

Every setting is fitted per fold on the other folds' grid windows and scored on the held-out train recordings
whole (max over their windows, against their tp boxes' species), exactly as the workflow's probe is: the score the
blend chooses weights on. A coarser grid is scored by taking every k-th window of the run's grid (hop 3 s from a
1.5 s grid), so the hop can be chosen without embedding again.

    rfcx bench-probe --results results --data-dir data/synthetic/demo-seed0
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.constants import SPECIES_COLUMNS
from rfcx.data.dataset import load_dataset
from rfcx.model.embedding import Embeddings, read_embeddings
from rfcx.model.metrics import lwlrap
from rfcx.model.probe import fit_probe, grid_targets, score_recordings
from rfcx.prediction.scoring import recording_truth


def thinned(embeddings: Embeddings, every: int) -> Embeddings:
    """Every `every`-th grid window of each recording (a grid of `every` times the hop)."""
    if every == 1:
        return embeddings
    position = embeddings.index.groupby("recording_id", sort=False).cumcount().to_numpy()
    keep = position % every == 0
    return Embeddings(embeddings.index[keep].reset_index(drop=True), embeddings.vectors[keep])


def oof_recordings_score(embeddings: Embeddings, tp: pd.DataFrame, folds: pd.DataFrame, *, c: float,
                         min_box_overlap: float, context: int) -> tuple[float, list[float]]:
    """Out-of-fold whole-recording LWLRAP of the probe with these settings: overall and per fold."""
    truths, scores, per_fold = [], [], []
    for fold in sorted(folds.fold.unique()):
        train = embeddings.of(folds.recording_id[folds.fold != fold])
        held = embeddings.of(folds.recording_id[folds.fold == fold])
        probe = fit_probe(train, grid_targets(train.index, tp, min_box_overlap), c=c, context=context)
        pooled = score_recordings(probe, held, "max")
        truth = recording_truth(tp, pooled.recording_id.to_numpy())
        per_fold.append(float(lwlrap(truth, pooled[list(SPECIES_COLUMNS)].to_numpy())))
        truths.append(truth)
        scores.append(pooled[list(SPECIES_COLUMNS)].to_numpy())
    return float(lwlrap(np.concatenate(truths), np.concatenate(scores))), per_fold


def sweep(results: str | Path, data_dir: str | Path, *, cs: list[float], overlaps: list[float],
          every: list[int], contexts: list[int]) -> pd.DataFrame:
    """One row per setting: c, min_box_overlap, grid hop, context, OOF whole-recording LWLRAP (and per fold), fit
    time."""
    results = Path(results)
    embeddings = read_embeddings(results / "embeddings" / "train.npy", results / "embeddings" / "train_index.parquet")
    hop = float(np.diff(embeddings.index.start.to_numpy()[:2])[0])
    folds = pd.read_parquet(results / "data" / "folds.parquet")
    tp = load_dataset(data_dir, check_audio=False).tp
    rows = []
    for step, context, c, overlap in itertools.product(every, contexts, cs, overlaps):
        started = time.perf_counter()
        score, per_fold = oof_recordings_score(thinned(embeddings, step), tp, folds, c=c, min_box_overlap=overlap,
                                               context=context)
        rows.append({"c": c, "min_box_overlap": overlap, "hop_seconds": hop * step, "context": context,
                     "oof_recordings_lwlrap": score,
                     "fold_spread": max(per_fold) - min(per_fold),
                     "per_fold": " / ".join(f"{value:.4f}" for value in per_fold),
                     "fit_seconds": time.perf_counter() - started})
    return pd.DataFrame(rows)
