"""LWLRAP: agreement with scikit-learn, hand-worked cases, per-class decomposition, streaming Keras metric."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score

from rfcx.model.metrics import LWLRAP, lwlrap, per_class_lwlrap


def _random_case(seed: int, n: int = 60, c: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Binary truth with ~10 % positives (some rows without any) and scores rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, c)) < 0.1).astype(np.float64)
    truth[: n // 6] = 0.0  # rows without a positive label
    truth[n // 6, 0] = 1.0  # ...but at least one positive overall
    scores = np.round(rng.random((n, c)), 1).astype(np.float32)  # 11 distinct values: many ties
    return truth, scores


def _sklearn_lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    return label_ranking_average_precision_score(truth, scores, sample_weight=truth.sum(axis=1))


# ------------------------------------------------------------------------------------------- NumPy


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_lwlrap_equals_sklearn_weighted_lrap(seed: int) -> None:
    truth, scores = _random_case(seed)
    assert (truth.sum(axis=1) == 0).any()
    assert len(np.unique(scores)) < scores.size  # ties present
    assert lwlrap(truth, scores) == pytest.approx(_sklearn_lwlrap(truth, scores), rel=1e-12)


def test_perfect_ranking_scores_one() -> None:
    # Every positive outranks every negative: precision of each positive is hits/rank = k/k = 1.
    truth = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.8, 0.2], [0.1, 0.7, 0.3, 0.2]])
    assert lwlrap(truth, scores) == 1.0


def test_positive_ranked_second_scores_half() -> None:
    # The positive (label 1, score 0.5) has one label above it: rank 2, hits 1 -> 1/2.
    truth = np.array([[0, 1, 0]])
    scores = np.array([[0.9, 0.5, 0.1]])
    assert lwlrap(truth, scores) == 0.5


def test_tie_between_positive_and_negative_is_pessimistic() -> None:
    # Positive and negative both score 0.5: #{k: s_k >= 0.5} = 2, so rank 2, hits 1 -> 1/2 (not 1).
    truth = np.array([[1, 0, 0]])
    scores = np.array([[0.5, 0.5, 0.1]])
    assert lwlrap(truth, scores) == 0.5


def test_sample_without_positive_does_not_change_score() -> None:
    # Row 0 alone gives 0.5 (as above); row 1 has no positive, hence weight 0, whatever its scores.
    truth = np.array([[0, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.5, 0.1], [0.3, 0.2, 0.1]])
    assert lwlrap(truth, scores) == 0.5
    assert lwlrap(truth, scores) == lwlrap(truth[:1], scores[:1])


def test_two_positives_out_of_order() -> None:
    # Scores rank the labels 0 > 1 > 2 > 3; positives are labels 1 and 3.
    #   label 1: rank 2 (labels 0, 1), hits 1 (label 1)          -> 1/2
    #   label 3: rank 4 (all labels),  hits 2 (labels 1 and 3)   -> 2/4
    # A second sample with a single, top-ranked positive adds precision 1.
    # LWLRAP = (1/2 + 2/4 + 1) / 3 positives = 2/3.
    truth = np.array([[0, 1, 0, 1], [1, 0, 0, 0]])
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.1, 0.1, 0.1]])
    assert lwlrap(truth, scores) == pytest.approx(2 / 3, rel=1e-15)
    # Label-weighted, not sample-weighted: the per-sample mean would be (1/2 + 1) / 2 = 3/4.
    assert lwlrap(truth, scores) != pytest.approx(0.75)


def test_masked_and_soft_truth_thresholds_at_half() -> None:
    # Labels -1 and 0.4 are not positive, 0.6 is: same as binary truth [0, 0, 1].
    scores = np.array([[0.9, 0.5, 0.1]])
    # Positive label 2 is ranked last: rank 3, hits 1 -> 1/3.
    assert lwlrap(np.array([[-1.0, 0.4, 0.6]]), scores) == pytest.approx(1 / 3)


def test_per_class_weights_sum_to_one_and_recompose_overall() -> None:
    truth, scores = _random_case(seed=7)
    truth[:, 5] = 0.0  # a class without positives gets NaN and weight 0
    per_class, weights = per_class_lwlrap(truth, scores)
    assert per_class.shape == weights.shape == (24,)
    assert np.isnan(per_class[5]) and weights[5] == 0.0
    assert weights.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(weights, truth.sum(axis=0) / truth.sum(), rtol=1e-12)
    assert np.nansum(per_class * weights) == pytest.approx(lwlrap(truth, scores), rel=1e-12)


def test_per_class_hand_worked() -> None:
    # From test_two_positives_out_of_order: class 1 has precision 1/2, class 3 has 2/4, class 0 has 1;
    # each has one of the three positives.
    truth = np.array([[0, 1, 0, 1], [1, 0, 0, 0]])
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.1, 0.1, 0.1]])
    per_class, weights = per_class_lwlrap(truth, scores)
    np.testing.assert_allclose(per_class, [1.0, 0.5, np.nan, 0.5])
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 0.0, 1 / 3])


@pytest.mark.parametrize(
    ("truth", "scores", "message"),
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), "no truth value"),
        (-np.ones((2, 3)), np.zeros((2, 3)), "no truth value"),
        (np.ones((2, 3)), np.zeros((2, 4)), "same shape"),
        (np.ones(3), np.zeros(3), "same shape"),
        (np.ones((1, 2)), np.array([[0.1, np.nan]]), "NaN"),
    ],
)
def test_invalid_input_raises(truth: np.ndarray, scores: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lwlrap(truth, scores)


# ------------------------------------------------------------------------------------------- Keras


def _as_float(tensor) -> float:
    return float(keras.ops.convert_to_numpy(tensor))


def test_keras_metric_streams_batches_like_numpy_and_ignores_masked_labels() -> None:
    truth, scores = _random_case(seed=11, n=40)
    truth[np.random.default_rng(11).random(truth.shape) < 0.2] = -1.0  # masked labels are not positive
    metric = LWLRAP()
    for rows in (slice(0, 7), slice(7, 8), slice(8, 24), slice(24, 40)):
        metric.update_state(truth[rows], scores[rows])
    expected = lwlrap(truth, scores)
    assert _as_float(metric.result()) == pytest.approx(expected, abs=1e-6)
    # Masked (-1) and known-absent (0) labels are interchangeable for the metric.
    assert expected == lwlrap(np.where(truth < 0, 0.0, truth), scores)

    metric.reset_state()
    assert _as_float(metric.result()) == 0.0
    metric.update_state(truth[:10], scores[:10])
    assert _as_float(metric.result()) == pytest.approx(lwlrap(truth[:10], scores[:10]), abs=1e-6)


def test_keras_metric_hand_worked_tie() -> None:
    # Same as test_tie_between_positive_and_negative_is_pessimistic.
    metric = LWLRAP(num_classes=3)
    metric.update_state(np.array([[1.0, 0.0, -1.0]]), np.array([[0.5, 0.5, 0.1]]))
    assert _as_float(metric.result()) == 0.5


def test_keras_metric_sample_weight_scales_samples() -> None:
    truth, scores = _random_case(seed=3, n=12)
    weights = np.array([2.0, 0.0] + [1.0] * 10)
    weighted = LWLRAP()
    weighted.update_state(truth, scores, sample_weight=weights)
    # Weight 2 counts row 0 twice, weight 0 drops row 1.
    repeat = np.array([0, 0] + list(range(2, 12)))
    assert _as_float(weighted.result()) == pytest.approx(lwlrap(truth[repeat], scores[repeat]), abs=1e-6)


def test_keras_metric_serialisation_round_trip() -> None:
    metric = LWLRAP(num_classes=5, name="val_lwlrap")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, LWLRAP)
    assert (restored.num_classes, restored.name) == (5, "val_lwlrap")


def test_keras_metric_in_compiled_fit_and_evaluate() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    truth = (rng.random((64, 24)) < 0.15).astype(np.float32)
    truth[truth == 0] = np.where(rng.random(int((truth == 0).sum())) < 0.2, -1.0, 0.0)
    truth[0, 0] = 1.0
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(24, activation="sigmoid")])
    model.compile(optimizer="adam", loss="mse", metrics=[LWLRAP()])

    history = model.fit(x, truth, batch_size=64, epochs=1, verbose=0)
    assert 0.0 < history.history["lwlrap"][0] <= 1.0

    evaluated = model.evaluate(x, truth, batch_size=16, verbose=0, return_dict=True)["lwlrap"]
    predictions = model.predict(x, batch_size=16, verbose=0)
    assert evaluated == pytest.approx(lwlrap(truth, predictions), abs=1e-6)
