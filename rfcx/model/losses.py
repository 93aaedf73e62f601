"""Cross-entropy losses that ignore unknown labels.

Training targets are (batch, 24) floats: values ≥ 0 are targets (1 present, 0 known absent, or a soft
pseudo-label in between) and values < 0 (−1 by convention) are unknown, e.g. species nobody annotated in
a partially labelled recording. Treating an unknown as absent would teach the model to suppress species
that may well be calling, so these losses drop such labels instead of guessing them.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["FrameLoss", "MaskedBinaryCrossentropy", "MaskedCategoricalCrossentropy", "masked_frame_crossentropy"]

#: A backend tensor (tf.Tensor, jax.Array, torch.Tensor).
Tensor = Any


def _targets_and_mask(y_true: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``y_true`` into (targets with unknown labels set to 0, 0/1 mask of known labels).

    Zeroing the unknowns keeps every downstream value finite, so multiplying by the mask removes them
    from both the loss and its gradient.
    """
    known = y_true >= 0
    return keras.ops.where(known, y_true, 0.0), keras.ops.cast(known, y_true.dtype)


def _smoothed(targets: Tensor, label_smoothing: float, num_classes: Tensor | float) -> Tensor:
    """Mix ``targets`` with the uniform distribution over ``num_classes`` (Keras' smoothing rule)."""
    if not label_smoothing:
        return targets
    return targets * (1.0 - label_smoothing) + label_smoothing / num_classes


class _MaskedLoss(keras.losses.Loss):
    """Shared constructor and config of the masked losses.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; 0 disables it.
        reduction: Keras reduction over the per-example losses.
        name: loss name (default: the subclass's ``default_name``).
        dtype: dtype of the computation.
    """

    default_name = "masked_loss"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name or self.default_name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict:
        """Return the constructor arguments, for saving a model that was compiled with this loss."""
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "dtype": self.dtype,
        }


@keras.saving.register_keras_serializable(package="rfcx")
class MaskedBinaryCrossentropy(_MaskedLoss):
    """Per-label binary cross-entropy averaged over the known labels of each example.

    The per-example loss is the mean over labels with ``y_true ≥ 0``, so an example with few known labels
    is not down-weighted against a fully labelled one; an example with none contributes 0 (not NaN).
    Without unknown labels it equals ``keras.losses.binary_crossentropy``. ``label_smoothing`` moves
    each known target towards 0.5, as in Keras. Probabilities are clipped to [ε, 1 − ε] (Keras epsilon)
    by ``keras.ops.binary_crossentropy`` on every backend, so saturated outputs give finite values.
    """

    default_name = "masked_binary_crossentropy"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        """Return the (batch,) per-example loss for (batch, C) targets and predictions."""
        targets, known = _targets_and_mask(y_true)
        targets = _smoothed(targets, self.label_smoothing, 2.0)
        per_label = keras.ops.binary_crossentropy(targets, y_pred, from_logits=self.from_logits)
        n_known = keras.ops.sum(known, axis=-1)
        return keras.ops.sum(per_label * known, axis=-1) / keras.ops.maximum(n_known, 1.0)


@keras.saving.register_keras_serializable(package="rfcx")
class MaskedCategoricalCrossentropy(_MaskedLoss):
    """Categorical cross-entropy for a softmax head trained on multi-label windows.

    Unknown labels become 0 and the remaining target mass of each row is normalised to 1, so a window
    holding two species asks for half the probability on each rather than for an impossible 1 + 1.
    Soft targets are normalised the same way, so only their relative sizes within a row matter. Rows
    with no target mass (no positive) contribute 0, also when label smoothing is on. ``label_smoothing``
    mixes the normalised target with the uniform distribution over the C classes, as in Keras.
    """

    default_name = "masked_categorical_crossentropy"

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        """Return the (batch,) per-example loss for (batch, C) targets and predictions."""
        targets, _ = _targets_and_mask(y_true)
        mass = keras.ops.sum(targets, axis=-1, keepdims=True)
        distribution = targets / keras.ops.maximum(mass, keras.config.epsilon())
        num_classes = keras.ops.cast(keras.ops.shape(targets)[-1], targets.dtype)
        distribution = _smoothed(distribution, self.label_smoothing, num_classes)
        per_row = keras.ops.categorical_crossentropy(distribution, y_pred, from_logits=self.from_logits)
        has_positive = keras.ops.cast(mass[..., 0] > 0, per_row.dtype)
        return per_row * has_positive


def masked_frame_crossentropy(frame_targets: Tensor, frame_scores: Tensor) -> Tensor:
    """Binary cross-entropy of (batch, frames, C) frame scores (probabilities) against frame targets with -1 =
    unknown: the mean over each example's known (frame, species) cells, then over the batch. Frames no box covers
    are unknown, so unlabelled audio is never taught as absent; an example with no known cell contributes 0."""
    targets, known = _targets_and_mask(keras.ops.cast(frame_targets, "float32"))
    per_cell = keras.ops.binary_crossentropy(targets, keras.ops.cast(frame_scores, "float32"))
    n_known = keras.ops.sum(known, axis=(1, 2))
    per_example = keras.ops.sum(per_cell * known, axis=(1, 2)) / keras.ops.maximum(n_known, 1.0)
    return keras.ops.mean(per_example)


@keras.saving.register_keras_serializable(package="rfcx")
class FrameLoss(keras.layers.Layer):
    """Adds ``weight`` x the masked frame-wise cross-entropy to the model's losses and passes the clip scores on.

    Inputs ``[clip_scores, frame_scores, frame_targets]``. The frame targets enter the training model as a second
    input (they never reach the prediction model), which keeps one clip-level output, one compiled loss and the
    same metric names as the reference head, with Keras' ``add_loss`` on every backend.
    """

    def __init__(self, weight: float = 1.0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: list[Tensor]) -> Tensor:
        clip_scores, frame_scores, frame_targets = inputs
        self.add_loss(self.weight * masked_frame_crossentropy(frame_targets, frame_scores))
        return clip_scores

    def compute_output_shape(self, input_shapes: list[tuple]) -> tuple:
        return input_shapes[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight}
