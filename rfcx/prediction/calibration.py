"""Per-species score calibration, fitted on out-of-fold predictions only.

LWLRAP ranks the species *within* a recording, so a species whose scores run systematically low (a quiet call, a
rare class the model is shy about) loses to louder species in every row even when its own ranking across recordings
is perfect. A per-species monotone map fixes the scale without touching that ranking: Platt scaling fits
sigmoid(slope * logit(score) + intercept) per species to its OOF labels, with Platt's smoothed targets
((N+ + 1) / (N+ + 2) and 1 / (N- + 2)) so that separable classes still get finite parameters, and a slope bounded
above zero so the map is strictly increasing. Species with too few positives or negatives keep their raw scores.

The fitted maps are a few numbers per species, kept as JSON. Fitting them on the same OOF rows they are scored on
would flatter them, so `cross_fitted` calibrates each fold with maps fitted on the other folds only: that is the
honest before/after estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from rfcx.model.metrics import POSITIVE_THRESHOLD

METHODS = ("platt",)
#: Scores are clipped this far from 0 and 1 before the logit, so saturated outputs map to finite values.
EPSILON = 1e-6
#: Lower bound of a fitted slope: keeps every map strictly increasing (never flat, never reversed).
MIN_SLOPE = 1e-3


@dataclass(frozen=True)
class SpeciesMap:
    """sigmoid(slope * logit(score) + intercept) for one species; `fitted` is False for the identity fallback."""

    slope: float
    intercept: float
    positives: int
    negatives: int
    fitted: bool


@dataclass(frozen=True)
class Calibration:
    """One map per species (in species order), applied column by column to (n, 24) scores."""

    method: str
    species: tuple[SpeciesMap, ...]

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated copy of `scores` (n, 24); unfitted species pass through unchanged."""
        scores = _checked_scores(scores, len(self.species))
        out = scores.copy()
        for column, fit in enumerate(self.species):
            if fit.fitted:
                out[:, column] = _platt(fit.slope, fit.intercept, _logit(scores[:, column]))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what calibration.json holds)."""
        return {"method": self.method, "species": {f"s{index}": asdict(fit) for index, fit in enumerate(self.species)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("method") not in METHODS:
            raise ValueError(f"unknown calibration method {data.get('method')!r}; expected one of {METHODS}")
        species = tuple(SpeciesMap(**data["species"][f"s{index}"]) for index in range(len(data["species"])))
        return cls(data["method"], species)


def fit_calibration(truth: np.ndarray, scores: np.ndarray, method: str = "platt",
                    min_positives: int = 3) -> Calibration:
    """Fit one map per species on (n, species) OOF `truth` (≥ 0.5 positive, < 0 unknown and left out) and `scores`.
    A species with fewer than `min_positives` positives or negatives keeps the identity (its raw scores)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
    scores = _checked_scores(scores)
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape != scores.shape:
        raise ValueError(f"truth {truth.shape} and scores {scores.shape} differ in shape")
    if np.isnan(truth).any():
        raise ValueError("calibration truth contains NaN (use -1 for unknown labels)")
    return Calibration(method, tuple(_fit_species(truth[:, column], scores[:, column], min_positives)
                                     for column in range(scores.shape[1])))


def cross_fitted(truth: np.ndarray, scores: np.ndarray, folds: np.ndarray, method: str = "platt",
                 min_positives: int = 3) -> np.ndarray:
    """Calibrated OOF scores where the rows of each fold are mapped by a calibration fitted on the other folds'
    rows only, so that scoring them does not reward the calibration for having seen their labels."""
    folds = np.asarray(folds)
    if len(np.unique(folds)) < 2:
        raise ValueError("cross-fitted calibration needs at least two folds")
    out = np.empty_like(np.asarray(scores, dtype=np.float64))
    for fold in np.unique(folds):
        held_out = folds == fold
        calibration = fit_calibration(truth[~held_out], scores[~held_out], method, min_positives)
        out[held_out] = calibration.apply(scores[held_out])
    return out


def _fit_species(truth: np.ndarray, scores: np.ndarray, min_positives: int) -> SpeciesMap:
    known = truth >= 0
    positive = truth[known] >= POSITIVE_THRESHOLD
    x = _logit(scores[known])
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if min(n_pos, n_neg) < max(min_positives, 1):
        return SpeciesMap(1.0, 0.0, n_pos, n_neg, fitted=False)
    target = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))  # Platt's smoothed targets

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * x + params[1]
        # cross-entropy of sigmoid(z) against soft targets, written in the overflow-free form
        loss = np.sum(np.logaddexp(0.0, z) - target * z)
        residual = _sigmoid(z) - target
        return float(loss), np.array([np.sum(residual * x), np.sum(residual)])

    result = minimize(loss_and_gradient, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(MIN_SLOPE, None), (None, None)])
    slope, intercept = (float(value) for value in result.x)
    return SpeciesMap(slope, intercept, n_pos, n_neg, fitted=True)


def _checked_scores(scores: np.ndarray, n_species: int | None = None) -> np.ndarray:
    """`scores` as float64 (n, species), refusing NaN with a message that says where."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or (n_species is not None and scores.shape[1] != n_species):
        raise ValueError(f"scores must be (n, {n_species or 'species'}), got {scores.shape}")
    if np.isnan(scores).any():
        rows = np.unique(np.nonzero(np.isnan(scores))[0])
        raise ValueError(f"scores contain NaN in {len(rows)} row(s) (first: {rows[:5].tolist()}); a NaN has no "
                         "place in a ranking, so it cannot be calibrated")
    return scores


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _platt(slope: float, intercept: float, x: np.ndarray) -> np.ndarray:
    return _sigmoid(slope * x + intercept)
