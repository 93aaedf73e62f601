"""Per-example gating (``p`` / ``always_apply``) and the Compose / OneOf combinators, batched.

The reference recipe decided per clip whether a transform applies (``always_apply or uniform() < p``)
and, in ``OneOf``, which transform a clip gets. On device a whole batch goes through one graph, so
every decision is drawn per example as a tensor and applied with masks (``keras.ops.where``): the
transform is computed for the whole batch and kept only where the example's draw says so. That costs
the transform's compute for unselected examples, which is what makes it compile to one static graph
on TensorFlow, JAX and PyTorch alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


def per_example(values: Any, rank: int) -> Any:
    """Reshape a (batch,) tensor to (batch, 1, ..., 1) of the given rank so it broadcasts per example."""
    return ops.reshape(values, (-1,) + (1,) * (rank - 1))


def batch_size(inputs: Any) -> Any:
    """Batch dimension of ``inputs``: an int when static, a scalar tensor inside a graph with a dynamic batch."""
    return ops.shape(inputs)[0]


@keras.saving.register_keras_serializable(package="rfcx")
class RandomTransform(keras.layers.Layer):
    """Base of every augmentation layer: per-example gating, training-only, own seed generator.

    Subclasses implement ``transform(inputs)``, which must transform every example of the batch and
    draw its random parameters per example from ``self.seed_generator``. This class then keeps the
    transformed example where ``always_apply or uniform() < p`` (drawn per example) and the input
    elsewhere. With ``training`` falsy (validation, prediction) the input comes back unchanged.

    ``seed`` seeds a ``keras.random.SeedGenerator``: two layers built with the same seed produce the
    same draws, call for call.
    """

    def __init__(self, p: float = 0.5, always_apply: bool = False, seed: int | None = None, **kwargs: Any) -> None:
        # float32 whatever the global policy: under mixed_bfloat16, Keras would otherwise autocast the
        # waveform to bfloat16 (8-bit mantissa) before the transform even runs.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self.always_apply = bool(always_apply)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def gated(self) -> bool:
        """Whether a per-example coin is needed at all (skipped when the transform always applies)."""
        return not self.always_apply and self.p < 1.0

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Nothing shape-dependent to create (the seed state exists from __init__); marks the layer built."""
        self.built = True

    def transform(self, inputs: Any, **context: Any) -> Any:
        """Transform every example of the batch (ungated); subclasses implement it."""
        raise NotImplementedError

    def uniform(self, shape: Sequence[Any], minval: float = 0.0, maxval: float = 1.0) -> Any:
        """Draw from U(minval, maxval) with this layer's seed generator."""
        return keras.random.uniform(tuple(shape), minval=minval, maxval=maxval, seed=self.seed_generator)

    def randint(self, shape: Sequence[Any], low: int, high_inclusive: int) -> Any:
        """Draw integers uniformly from [low, high_inclusive] (both ends, unlike numpy's randint)."""
        return keras.random.randint(tuple(shape), low, high_inclusive + 1, dtype="int32", seed=self.seed_generator)

    def apply_mask(self, inputs: Any) -> Any:
        """Per-example boolean (batch,): the reference's ``uniform() < p``."""
        return self.uniform((batch_size(inputs),)) < self.p

    def call(self, inputs: Any, training: bool | None = None, **context: Any) -> Any:
        """``context``: what a stage passes to every transform of it (the power stage: ``signal_power``)."""
        if not training:
            return inputs
        outputs = self.transform(inputs, **context)
        if not self.gated:
            return outputs
        mask = per_example(self.apply_mask(inputs), len(inputs.shape))
        return ops.where(mask, outputs, inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(p=self.p, always_apply=self.always_apply, seed=self.seed)
        return config


class _Combinator(RandomTransform):
    """Holds child transforms and (de)serialises them, so a saved model reloads without custom_objects."""

    def __init__(
        self,
        transforms: Sequence[keras.layers.Layer],
        p: float = 1.0,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        if not transforms:
            raise ValueError(f"{type(self).__name__} needs at least one transform")
        self.transforms = list(transforms)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Build the children too: every child sees the same shape (all transforms keep shapes)."""
        for layer in self.transforms:
            if not layer.built:
                layer.build(input_shape)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(transforms=[keras.saving.serialize_keras_object(t) for t in self.transforms])
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Combinator:
        config = dict(config)
        config["transforms"] = [keras.saving.deserialize_keras_object(t) for t in config["transforms"]]
        return cls(**config)


@keras.saving.register_keras_serializable(package="rfcx")
class Compose(_Combinator):
    """Apply the transforms in order (each with its own gating); the whole sequence is gated by ``p``."""

    def transform(self, inputs: Any, **context: Any) -> Any:
        outputs = inputs
        for layer in self.transforms:
            outputs = layer(outputs, training=True, **context)
        return outputs


@keras.saving.register_keras_serializable(package="rfcx")
class OneOf(_Combinator):
    """Per example, apply one of the transforms picked uniformly (with that transform's own gating).

    Every candidate is computed for the whole batch and the pick selects among them with masks: the
    price of a static graph is k transforms' compute instead of one. Transforms of one class that know how
    to share the work (a static ``one_of(layers, choice, inputs, **context)``, e.g. the mel-power noise
    colours, which share one random draw) get the drawn choice and do it themselves.
    """

    def transform(self, inputs: Any, **context: Any) -> Any:
        picks = self.randint((batch_size(inputs),), 0, len(self.transforms) - 1)
        kind = type(self.transforms[0])
        if hasattr(kind, "one_of") and all(type(layer) is kind for layer in self.transforms):
            return kind.one_of(self.transforms, picks, inputs, **context)
        choice = per_example(picks, len(inputs.shape))
        outputs = self.transforms[0](inputs, training=True, **context)
        for index, layer in enumerate(self.transforms[1:], start=1):
            outputs = ops.where(choice == index, layer(inputs, training=True, **context), outputs)
        return outputs
