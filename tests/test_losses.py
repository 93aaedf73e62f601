"""Masked cross-entropies: unknown labels (−1) must not influence the loss or its gradient."""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import pytest

from rfcx.model.losses import MaskedBinaryCrossentropy, MaskedCategoricalCrossentropy

EPS = keras.config.epsilon()


def _np(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def _gradient(fn: Callable, x: np.ndarray) -> np.ndarray:
    """d fn(x) / dx with the active backend's autodiff (keras.ops has none of its own)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            value = fn(variable)
        return tape.gradient(value, variable).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    if backend == "torch":
        import torch

        variable = torch.tensor(x, requires_grad=True)
        fn(variable).backward()
        return variable.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def _bce(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


@pytest.fixture
def masked_batch() -> tuple[np.ndarray, np.ndarray]:
    """Three examples of four labels; row 2 is entirely unknown."""
    y_true = np.array([[1.0, -1.0, 0.0, 0.3], [-1.0, 0.0, -1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]], np.float32)
    y_pred = np.array([[0.8, 0.3, 0.4, 0.5], [0.9, 0.2, 0.6, 0.7], [0.1, 0.5, 0.9, 0.4]], np.float32)
    return y_true, y_pred


def test_bce_hand_computed_on_unmasked_subset(masked_batch) -> None:
    y_true, y_pred = masked_batch
    known = y_true >= 0
    per_example = np.array(
        [_bce(t[k], p[k]).mean() if k.any() else 0.0 for t, p, k in zip(y_true, y_pred, known)]
    )
    # Row 0: mean of -ln .8, -ln .6, -(.3 ln .5 + .7 ln .5) over its 3 known labels.
    assert per_example[0] == pytest.approx((-np.log(0.8) - np.log(0.6) - np.log(0.5)) / 3)

    loss = MaskedBinaryCrossentropy(reduction=None)
    np.testing.assert_allclose(_np(loss(y_true, y_pred)), per_example, rtol=1e-5)
    # Default reduction: mean over the batch, the all-unknown row counting as 0.
    assert _np(MaskedBinaryCrossentropy()(y_true, y_pred)) == pytest.approx(per_example.mean(), rel=1e-5)


def test_all_masked_rows_give_zero(masked_batch) -> None:
    y_true, y_pred = masked_batch
    for loss in (MaskedBinaryCrossentropy(reduction=None), MaskedCategoricalCrossentropy(reduction=None)):
        values = _np(loss(y_true, y_pred))
        assert np.isfinite(values).all()
        assert values[2] == 0.0


def test_masked_predictions_change_neither_loss_nor_gradient(masked_batch) -> None:
    y_true, y_pred = masked_batch
    known = y_true >= 0
    loss = MaskedBinaryCrossentropy()
    other = np.where(known, y_pred, 1.0 - y_pred).astype(np.float32)  # move only the masked predictions
    assert _np(loss(y_true, other)) == pytest.approx(_np(loss(y_true, y_pred)), rel=1e-6)

    gradient = _gradient(lambda p: loss(y_true, p), y_pred)
    # d/dp of (1/batch) * (1/n_known) * BCE(t, p) = (p - t) / (p (1 - p)) / (n_known * batch); 0 if masked.
    n_known = np.maximum(known.sum(axis=1, keepdims=True), 1)
    expected = np.where(known, (y_pred - y_true) / (y_pred * (1 - y_pred)) / (n_known * len(y_true)), 0.0)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-7)
    assert (gradient[~known] == 0.0).all()


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_bce_equals_keras_when_nothing_masked(from_logits: bool, label_smoothing: float) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.random((5, 24)).astype(np.float32)  # soft targets are targets too
    y_pred = rng.normal(size=(5, 24)).astype(np.float32)
    if not from_logits:
        y_pred = 1 / (1 + np.exp(-y_pred))
    ours = MaskedBinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing, reduction=None)
    reference = keras.losses.binary_crossentropy(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing
    )
    np.testing.assert_allclose(_np(ours(y_true, y_pred)), _np(reference), rtol=1e-5)


def test_bce_is_finite_for_saturated_probabilities() -> None:
    y_true = np.array([[1.0, 0.0, -1.0]], np.float32)
    y_pred = np.array([[0.0, 1.0, 1.0]], np.float32)  # both known labels maximally wrong
    loss = MaskedBinaryCrossentropy()
    # Clipped to [eps, 1 - eps]: about -ln(eps) per label (1 - eps rounds a little in float32).
    assert _np(loss(y_true, y_pred)) == pytest.approx(-np.log(EPS), rel=0.01)
    assert np.isfinite(_gradient(lambda p: loss(y_true, p), y_pred)).all()


def test_categorical_normalises_multi_positive_rows() -> None:
    p = np.array([[0.4, 0.3, 0.2, 0.1]] * 3, np.float32)
    y_true = np.array(
        [
            [1.0, 1.0, 0.0, -1.0],  # two positives share the mass: -(.5 ln .4 + .5 ln .3)
            [0.0, -1.0, 1.0, 0.0],  # one positive: -ln .2
            [0.0, -1.0, 0.0, 0.0],  # no positive: 0
        ],
        np.float32,
    )
    expected = [-(0.5 * np.log(0.4) + 0.5 * np.log(0.3)), -np.log(0.2), 0.0]
    loss = MaskedCategoricalCrossentropy(reduction=None)
    np.testing.assert_allclose(_np(loss(y_true, p)), expected, rtol=1e-5)
    # A single-positive row equals Keras' categorical cross-entropy on its one-hot target.
    one_hot = np.array([[0.0, 0.0, 1.0, 0.0]], np.float32)
    assert _np(loss(y_true[1:2], p[1:2]))[0] == pytest.approx(
        _np(keras.losses.categorical_crossentropy(one_hot, p[1:2]))[0], rel=1e-6
    )


def test_categorical_masked_logits_do_not_matter_for_target_but_stay_in_softmax() -> None:
    # With from_logits the unknown label is target 0 but still competes in the softmax denominator.
    logits = np.array([[2.0, 1.0, 0.5]], np.float32)
    y_true = np.array([[1.0, 0.0, -1.0]], np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum())
    loss = MaskedCategoricalCrossentropy(from_logits=True, reduction=None)
    assert _np(loss(y_true, logits))[0] == pytest.approx(-log_softmax[0, 0], rel=1e-5)


def test_categorical_label_smoothing_spares_rows_without_positive() -> None:
    p = np.array([[0.4, 0.3, 0.2, 0.1]] * 2, np.float32)
    y_true = np.array([[1.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, -1.0]], np.float32)
    # Target (.5, .5, 0, 0) * 0.9 + 0.1 / 4 = (.475, .475, .025, .025).
    expected = -(0.475 * np.log(0.4) + 0.475 * np.log(0.3) + 0.025 * np.log(0.2) + 0.025 * np.log(0.1))
    values = _np(MaskedCategoricalCrossentropy(label_smoothing=0.1, reduction=None)(y_true, p))
    np.testing.assert_allclose(values, [expected, 0.0], rtol=1e-5)


@pytest.mark.parametrize("cls", [MaskedBinaryCrossentropy, MaskedCategoricalCrossentropy])
def test_serialisation_round_trip(cls: type, masked_batch) -> None:
    loss = cls(from_logits=True, label_smoothing=0.05, reduction="sum", name="custom")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is cls
    assert restored.get_config() == loss.get_config()
    y_true, y_pred = masked_batch
    assert _np(restored(y_true, y_pred)) == pytest.approx(_np(loss(y_true, y_pred)))


def test_invalid_label_smoothing_raises() -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedBinaryCrossentropy(label_smoothing=1.5)
