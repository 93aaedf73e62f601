"""Label-weighted label-ranking average precision (LWLRAP), the competition metric.

One definition is shared by the NumPy functions (offline scoring of predictions) and the streaming
Keras metric (monitoring during ``model.fit``), so that a number logged in training means the same as
a number computed on saved predictions.

Definition (scores ``s``, one row per sample; label ``j`` of sample ``n`` is *positive* iff its truth
is ≥ 0.5, so masked labels, −1, and known absences, 0, are never positive)::

    rank(n, j)      = #{labels k       : s[n, k] >= s[n, j]}
    hits(n, j)      = #{positive labels k : s[n, k] >= s[n, j]}
    precision(n, j) = hits(n, j) / rank(n, j)                    (for positive (n, j) only)
    LWLRAP          = sum of precision(n, j) over positive (n, j) / number of positive (n, j)

Counting every label with a score *at or above* the positive's score is scikit-learn's tie rule
(``label_ranking_average_precision_score``): a tie between a positive and a negative is resolved
pessimistically, so a constant predictor cannot score well. Averaging over positive labels rather than
over samples is the "label-weighted" part; it equals scikit-learn's LRAP with
``sample_weight = number of positives per sample``, and samples without any positive contribute nothing.
Grouping the same precisions by class gives the per-class scores of the Kaggle reference implementation.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from rfcx.constants import N_SPECIES

__all__ = ["LWLRAP", "lwlrap", "per_class_lwlrap"]

#: Truth values at or above this count as positive labels; below it (0, soft negatives, −1) they do not.
POSITIVE_THRESHOLD: float = 0.5

#: A backend tensor (tf.Tensor, jax.Array, torch.Tensor) or anything ``keras.ops`` converts to one.
Tensor = Any

# Rows handled at once by the NumPy implementation: bounds the (rows, C, C) comparison cube to ~10 MB.
_CHUNK_ROWS = 16_384


# --------------------------------------------------------------------------------------------- NumPy


def _label_precisions(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Return precision(n, j) of the module definition for positive labels and 0 elsewhere, shape (N, C).

    ``at_or_above[n, j, k]`` is ``s[n, k] >= s[n, j]``; summing over k gives the rank, and summing only
    over positive k gives the hits. :class:`LWLRAP` computes the same cube with ``keras.ops``.
    """
    at_or_above = scores[:, None, :] >= scores[:, :, None]
    rank = at_or_above.sum(axis=-1)
    hits = (at_or_above & positive[:, None, :]).sum(axis=-1)
    return positive * hits / np.maximum(rank, 1)


def _validated(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (positive mask, float scores), refusing inputs for which the metric is undefined."""
    truth = np.asarray(truth)
    scores = np.asarray(scores, dtype=np.float64)
    if truth.ndim != 2 or truth.shape != scores.shape:
        raise ValueError(
            f"truth and scores must both be (samples, classes) arrays of the same shape; "
            f"got {truth.shape} and {scores.shape}"
        )
    if np.isnan(scores).any():
        # NaN compares false with everything, so a NaN score would silently rank nowhere.
        raise ValueError("scores contain NaN; LWLRAP needs a total order of the scores")
    positive = truth >= POSITIVE_THRESHOLD
    if not positive.any():
        raise ValueError(
            f"LWLRAP is undefined without positive labels: no truth value is >= {POSITIVE_THRESHOLD}"
        )
    return positive, scores


def _per_class_sums(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (sum of precisions, number of positive labels) per class, over all samples.

    These are the same two statistics that :class:`LWLRAP` accumulates; every score derives from them.
    """
    positive, scores = _validated(truth, scores)
    precision_sum = np.zeros(scores.shape[1])
    for start in range(0, len(scores), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        precision_sum += _label_precisions(positive[rows], scores[rows]).sum(axis=0)
    return precision_sum, positive.sum(axis=0).astype(np.float64)


def lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Return the label-weighted label-ranking average precision of ``scores`` (see module docstring).

    Equal to ``sklearn.metrics.label_ranking_average_precision_score(truth, scores,
    sample_weight=truth.sum(1))`` for binary truth; here truth may also hold −1 (masked) or soft values,
    and only values ≥ 0.5 are positive. Raises ``ValueError`` when there is no positive label at all,
    because the score would be 0/0 and a silent NaN tends to surface far from its cause.
    """
    precision_sum, positive_count = _per_class_sums(truth, scores)
    return float(precision_sum.sum() / positive_count.sum())


def per_class_lwlrap(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (per-class LWLRAP, class weights), each of shape (C,).

    A class's score is the mean precision of its positive labels (NaN for a class without positives);
    its weight is its share of all positive labels, so ``np.nansum(per_class * weights)`` equals
    :func:`lwlrap`. This decomposition shows which species drag the overall score down.
    """
    precision_sum, positive_count = _per_class_sums(truth, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(positive_count > 0, precision_sum / positive_count, np.nan)
    return per_class, positive_count / positive_count.sum()


# --------------------------------------------------------------------------------------------- Keras


def _keras_label_precisions(positive: Tensor, scores: Tensor) -> Tensor:
    """``keras.ops`` twin of :func:`_label_precisions`: precision(n, j) for positive labels, else 0.

    ``positive`` is a 0/1 float tensor of the same (batch, C) shape and dtype as ``scores``. The rank is
    floored at 1 so that a NaN score (which is not >= itself) yields precision 0 instead of 0/0.
    """
    at_or_above = keras.ops.cast(
        keras.ops.expand_dims(scores, 1) >= keras.ops.expand_dims(scores, 2), scores.dtype
    )
    rank = keras.ops.sum(at_or_above, axis=-1)
    hits = keras.ops.sum(at_or_above * keras.ops.expand_dims(positive, 1), axis=-1)
    return positive * hits / keras.ops.maximum(rank, 1.0)


@keras.saving.register_keras_serializable(package="rfcx")
class LWLRAP(keras.metrics.Metric):
    """Streaming LWLRAP for ``model.compile(metrics=[LWLRAP()])``.

    The metric is a ratio of sums (see module docstring), so it streams exactly: the state is the
    per-class sum of precisions and the per-class count of positive labels, and the result over any
    sequence of batches equals :func:`lwlrap` over their concatenation. Precisions are computed within
    each sample, so batch boundaries do not matter. Ties are decided in the metric's dtype (float32 by
    default), which matters only for scores that differ below that precision.

    Args:
        num_classes: number of labels per sample (the last axis of ``y_true`` and ``y_pred``).
        name: metric name as logged by Keras.
        dtype: dtype of the state and of the computation.
    """

    def __init__(self, num_classes: int = N_SPECIES, name: str = "lwlrap", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.precision_sum = self.add_variable(
            shape=(self.num_classes,), initializer="zeros", dtype=self.dtype, name="precision_sum"
        )
        self.positive_count = self.add_variable(
            shape=(self.num_classes,), initializer="zeros", dtype=self.dtype, name="positive_count"
        )

    def update_state(self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> None:
        """Add one batch: ``y_true`` and ``y_pred`` are (batch, num_classes); ``sample_weight`` is
        (batch,), (batch, 1) or (batch, num_classes) and scales both sums (weight 0 drops a sample)."""
        y_true = keras.ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
        positive = keras.ops.cast(y_true >= POSITIVE_THRESHOLD, self.dtype)
        precisions = _keras_label_precisions(positive, y_pred)
        if sample_weight is not None:
            weight = keras.ops.convert_to_tensor(sample_weight, dtype=self.dtype)
            if len(weight.shape) == 1:  # static rank, not a tensor value: safe in a compiled graph
                weight = keras.ops.expand_dims(weight, -1)
            precisions = precisions * weight
            positive = positive * weight
        self.precision_sum.assign_add(keras.ops.sum(precisions, axis=0))
        self.positive_count.assign_add(keras.ops.sum(positive, axis=0))

    def result(self) -> Tensor:
        """Return sum of precisions / number of positives; 0 (not NaN) before any positive was seen."""
        total = keras.ops.maximum(keras.ops.sum(self.positive_count), keras.config.epsilon())
        return keras.ops.sum(self.precision_sum) / total

    def reset_state(self) -> None:
        """Forget all batches, e.g. at the start of each epoch and of ``model.evaluate``."""
        for variable in (self.precision_sum, self.positive_count):
            variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self) -> dict:
        """Return the constructor arguments, for saving a model that was compiled with this metric."""
        return {**super().get_config(), "num_classes": self.num_classes}
