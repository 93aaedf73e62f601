"""Per-species calibration fitted on OOF predictions: it repairs a species the model under-scores, never reorders a
species' own scores, survives a JSON round trip and refuses NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rfcx.model.metrics import lwlrap
from rfcx.prediction.calibration import Calibration, cross_fitted, fit_calibration

N_SPECIES = 24
SHY = 5  # the species the synthetic model under-scores


def synthetic_predictions(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, scores, folds) of a model that ranks each species' recordings well but scores species SHY ten times
    too low, so it loses to the other species' false alarms in every row where it is present."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, N_SPECIES)) < 0.08).astype(np.float64)
    truth[np.arange(n), rng.integers(0, N_SPECIES, n)] = 1.0  # every row has a positive
    logits = np.where(truth == 1, 1.5, -1.5) + rng.normal(0, 1.2, truth.shape)
    scores = 1 / (1 + np.exp(-logits))
    scores[:, SHY] *= 0.1
    return truth, scores, np.arange(n) % 3


def test_calibration_raises_lwlrap_when_one_species_is_under_scored() -> None:
    truth, scores, folds = synthetic_predictions()
    calibration = fit_calibration(truth, scores)
    assert lwlrap(truth, calibration.apply(scores)) > lwlrap(truth, scores) + 0.01
    # the honest (cross-fitted) estimate sees the gain too, and on fresh predictions the fitted maps still help
    assert lwlrap(truth, cross_fitted(truth, scores, folds)) > lwlrap(truth, scores) + 0.01
    fresh_truth, fresh_scores, _ = synthetic_predictions(seed=1)
    assert lwlrap(fresh_truth, calibration.apply(fresh_scores)) > lwlrap(fresh_truth, fresh_scores) + 0.01
    shy = calibration.species[SHY]
    assert shy.fitted and shy.intercept > 0  # lifted


def test_calibration_is_monotone_within_each_species() -> None:
    truth, scores, _ = synthetic_predictions()
    calibration = fit_calibration(truth, scores)
    grid = np.tile(np.linspace(0, 1, 501)[:, None], (1, N_SPECIES))
    calibrated = calibration.apply(grid)
    assert np.all(np.diff(calibrated, axis=0) >= 0)
    for column in range(N_SPECIES):  # the order of one species' scores is never changed
        order = np.argsort(scores[:, column], kind="stable")
        assert np.all(np.diff(calibration.apply(scores)[order, column]) >= 0)


def test_species_with_too_few_positives_keep_their_raw_scores() -> None:
    truth, scores, _ = synthetic_predictions()
    truth[:, 7] = 0.0
    truth[:2, 7] = 1.0
    truth[:, 9] = -1.0  # unknown everywhere: nothing to fit on
    calibration = fit_calibration(truth, scores, min_positives=3)
    assert not calibration.species[7].fitted and calibration.species[7].positives == 2
    assert not calibration.species[9].fitted and calibration.species[9].positives == 0
    np.testing.assert_array_equal(calibration.apply(scores)[:, [7, 9]], scores[:, [7, 9]])


def test_a_calibration_survives_a_json_round_trip() -> None:
    truth, scores, _ = synthetic_predictions()
    calibration = fit_calibration(truth, scores)
    restored = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert restored == calibration
    np.testing.assert_array_equal(restored.apply(scores), calibration.apply(scores))


def test_calibration_refuses_nan_with_a_clear_error() -> None:
    truth, scores, _ = synthetic_predictions()
    scores[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN in 1 row"):
        fit_calibration(truth, scores)
    clean = fit_calibration(truth, np.nan_to_num(scores))
    with pytest.raises(ValueError, match="NaN"):
        clean.apply(scores)
    truth[0, 0] = np.nan
    with pytest.raises(ValueError, match="truth contains NaN"):
        fit_calibration(truth, np.nan_to_num(scores))


def test_an_unknown_method_is_refused() -> None:
    truth, scores, _ = synthetic_predictions(n=50)
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibration(truth, scores, method="isotonic")
