"""Combining model families (the CNN, the embedding probe) into one submission, with weights chosen out of fold.

Each family's score of a recording is the mean over its fold models. The families' weights are chosen on the
out-of-fold whole-recording scores alone (every train recording scored by the fold models that never saw it, as the
test recordings are scored), on a grid over the simplex; test truth never enters. The combination is a weighted
mean of probabilities: LWLRAP compares species within a recording, which per-species ranks across recordings
throw away.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from rfcx.constants import SPECIES_COLUMNS, TARGET_COLUMNS
from rfcx.model.metrics import lwlrap


def weight_grid(families: list[str], step: float) -> list[dict[str, float]]:
    """Every weighting of `families` with weights in multiples of `step` that sum to 1."""
    parts = int(round(1.0 / step))
    if parts < 1 or not np.isclose(parts * step, 1.0):
        raise ValueError(f"blend step must divide 1, got {step}")
    grid = [combination for combination in itertools.product(range(parts + 1), repeat=len(families))
            if sum(combination) == parts]
    return [{family: count / parts for family, count in zip(families, combination)} for combination in grid]


def mix(frames: dict[str, pd.DataFrame], weights: dict[str, float]) -> pd.DataFrame:
    """Weighted mean of the families' scores (recording_id, s0..s23), aligned on the first frame's recordings."""
    first = next(iter(frames.values()))
    ids = first.recording_id.to_numpy()
    total = np.zeros((len(ids), len(SPECIES_COLUMNS)))
    for family, frame in frames.items():
        aligned = frame.set_index("recording_id").reindex(ids)
        if aligned[list(SPECIES_COLUMNS)].isna().to_numpy().any():
            raise ValueError(f"family {family} has no score for some of the recordings to blend")
        total += weights.get(family, 0.0) * aligned[list(SPECIES_COLUMNS)].to_numpy(np.float64)
    mixed = pd.DataFrame(total, columns=list(SPECIES_COLUMNS))
    mixed.insert(0, "recording_id", ids)
    return mixed


def choose_weights(oof: dict[str, pd.DataFrame], step: float) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The weighting with the best out-of-fold whole-recording LWLRAP. `oof`: per family, its held-out recordings
    (recording_id, t0..t23, s0..s23; every fold's). Ties go to the weighting nearest equal weights. Returns the
    weights and every weighting tried with its score."""
    families = list(oof)
    first = next(iter(oof.values()))
    truth = first[list(TARGET_COLUMNS)].to_numpy()
    for family, frame in oof.items():
        aligned = frame.set_index("recording_id").reindex(first.recording_id)
        if not np.array_equal(aligned[list(TARGET_COLUMNS)].to_numpy(), truth):
            raise ValueError(f"family {family}'s out-of-fold recordings differ from {families[0]}'s")
    curve = []
    for weights in weight_grid(families, step):
        mixed = mix(oof, weights)
        curve.append({"weights": weights, "oof_recordings_lwlrap": float(lwlrap(truth, mixed[list(SPECIES_COLUMNS)]
                                                                                .to_numpy()))})
    equal = 1.0 / len(families)
    best = max(curve, key=lambda point: (round(point["oof_recordings_lwlrap"], 10),
                                         -sum(abs(w - equal) for w in point["weights"].values())))
    return best["weights"], curve
