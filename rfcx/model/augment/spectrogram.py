"""Batched augmentations on the dB log-mel image (batch, n_mels, frames, channels), row 0 = lowest band.

They run after ``LogMelSpectrogram`` and before ``MinMaxScale``. Anything they blank out is filled
with the example's image minimum (the -top_db floor for a normal clip), i.e. "no energy here".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import librosa
import numpy as np
from keras import ops

from rfcx.model.augment.compose import RandomTransform, batch_size


def image_floor(inputs: Any) -> Any:
    """Per-example minimum (batch, 1, 1, 1): the value that means "silence" in a dB image."""
    return ops.min(inputs, axis=tuple(range(1, len(inputs.shape))), keepdims=True)


def pitch_shift_tables(mel_frequencies: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-interpolation matrices and row validity for every shift in [-max_steps, max_steps] semitones.

    For shift n (table index n + max_steps), output row i (centre f_i) reads the input at frequency
    f_i * 2**(-n/12): its fractional row position is found by linear interpolation of mel values
    between band centres, and ``matrices[k, i]`` holds the two linear-interpolation weights on the
    neighbouring rows. ``valid[k, i]`` is 0 where that frequency lies outside the band centres
    (below the lowest or above the highest): no information exists there, the caller fills the floor.

    Returns ``matrices`` (2*max_steps+1, n_mels, n_mels) and ``valid`` (2*max_steps+1, n_mels), float32.
    """
    centres = np.asarray(mel_frequencies, dtype=np.float64)
    n_mels = centres.shape[0]
    centre_mels = librosa.hz_to_mel(centres)
    rows = np.arange(n_mels)
    steps = np.arange(-max_steps, max_steps + 1)
    matrices = np.zeros((steps.size, n_mels, n_mels), dtype=np.float64)
    valid = np.zeros((steps.size, n_mels), dtype=np.float64)
    for k, n_steps in enumerate(steps):
        source = np.interp(librosa.hz_to_mel(centres * 2.0 ** (-n_steps / 12.0)), centre_mels, rows, left=np.nan, right=np.nan)
        inside = np.isfinite(source)
        low = np.clip(np.floor(np.nan_to_num(source)), 0, n_mels - 1).astype(int)
        high = np.minimum(low + 1, n_mels - 1)
        weight = np.nan_to_num(source) - low
        out_rows = rows[inside]
        np.add.at(matrices[k], (out_rows, low[inside]), 1.0 - weight[inside])
        np.add.at(matrices[k], (out_rows, high[inside]), weight[inside])
        valid[k] = inside
    return matrices.astype(np.float32), valid.astype(np.float32)


@keras.saving.register_keras_serializable(package="rfcx")
class MelPitchShift(RandomTransform):
    """Pitch shift by an integer number of semitones n ~ U{-max_steps..max_steps}, on the mel image.

    The fast on-device stand-in for ``librosa.effects.pitch_shift``: a pitch shift scales every
    frequency by 2**(n/12), so output row i at centre f_i takes the input's value at f_i * 2**(-n/12)
    (linear interpolation along the mel axis). Rows whose source lies outside the band centres are
    filled with the image minimum. Per example it is one (n_mels x n_mels) matrix, gathered from a
    precomputed table, applied with a batched einsum. It does not reproduce the phase vocoder's
    temporal smearing nor the level change of band energies (slaney bands widen with frequency).
    """

    def __init__(
        self,
        mel_frequencies: Sequence[float],
        max_steps: int = 5,
        p: float = 0.5,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        if int(max_steps) < 0:
            raise ValueError(f"MelPitchShift: max_steps must be >= 0, got {max_steps!r}")
        self.mel_frequencies = [float(f) for f in mel_frequencies]
        self.max_steps = int(max_steps)
        self._matrices, self._valid = pitch_shift_tables(np.asarray(self.mel_frequencies), self.max_steps)

    def shift_by(self, inputs: Any, steps: Any) -> Any:
        """Shift each example by given semitones (batch,) int32; exposed so tests can pin the shift."""
        index = ops.cast(steps, "int32") + self.max_steps
        matrices = ops.take(ops.convert_to_tensor(self._matrices, dtype=inputs.dtype), index, axis=0)
        valid = ops.take(ops.convert_to_tensor(self._valid, dtype=inputs.dtype), index, axis=0)
        shifted = ops.einsum("bij,bjtc->bitc", matrices, inputs)
        valid = ops.reshape(valid, (-1, len(self.mel_frequencies), 1, 1)) > 0.5
        return ops.where(valid, shifted, image_floor(inputs))

    def transform(self, inputs: Any) -> Any:
        return self.shift_by(inputs, self.randint((batch_size(inputs),), -self.max_steps, self.max_steps))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(mel_frequencies=self.mel_frequencies, max_steps=self.max_steps)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class SpecAugment(RandomTransform):
    """SpecAugment-style masking: ``time_masks`` bands of up to ``time_mask_frames`` frames and
    ``freq_masks`` bands of up to ``freq_mask_bins`` mel rows, set to the image minimum.

    Each mask draws its width uniformly in [0, max] and its start uniformly among the positions where
    it fits, independently per example.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_mask_frames: int = 16,
        freq_masks: int = 2,
        freq_mask_bins: int = 8,
        p: float = 0.5,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        if min(time_masks, time_mask_frames, freq_masks, freq_mask_bins) < 0:
            raise ValueError("SpecAugment: mask counts and sizes must be >= 0")
        self.time_masks = int(time_masks)
        self.time_mask_frames = int(time_mask_frames)
        self.freq_masks = int(freq_masks)
        self.freq_mask_bins = int(freq_mask_bins)

    def band_mask(self, inputs: Any, axis: int, count: int, max_width: int) -> Any:
        """Boolean (batch, size) union of ``count`` random bands along ``axis`` per example."""
        size = ops.shape(inputs)[axis]
        batch = batch_size(inputs)
        positions = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
        mask = ops.zeros((batch, size), dtype="bool")
        for _ in range(count):
            width = self.randint((batch, 1), 0, max_width)
            width = ops.minimum(width, size)
            start = ops.cast(ops.floor(self.uniform((batch, 1)) * ops.cast(size - width + 1, "float32")), "int32")
            mask = ops.logical_or(mask, ops.logical_and(positions >= start, positions < start + width))
        return mask

    def transform(self, inputs: Any) -> Any:
        freq = self.band_mask(inputs, 1, self.freq_masks, self.freq_mask_bins)
        time = self.band_mask(inputs, 2, self.time_masks, self.time_mask_frames)
        freq = ops.expand_dims(ops.expand_dims(freq, -1), -1)  # (batch, n_mels, 1, 1)
        time = ops.expand_dims(ops.expand_dims(time, 1), -1)  # (batch, 1, frames, 1)
        return ops.where(ops.logical_or(freq, time), image_floor(inputs), inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            time_masks=self.time_masks,
            time_mask_frames=self.time_mask_frames,
            freq_masks=self.freq_masks,
            freq_mask_bins=self.freq_mask_bins,
        )
        return config
