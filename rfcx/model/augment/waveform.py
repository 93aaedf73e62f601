"""Batched waveform augmentations on (batch, samples) audio, before the log-mel front end.

Each layer reproduces one transform of the reference recipe (see ``rfcx.model.augment.reference``) with
every example drawing its own parameters. Shapes that depend only on the clip length (the pink-noise
spectrum, volume curves) are computed once in numpy from the static sample count, with the same
helpers the reference uses, and enter the graph as constants.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from rfcx.constants import SAMPLE_RATE
from rfcx.model.augment.compose import RandomTransform, batch_size
from rfcx.model.augment.reference import (
    NOISE_LEVELS,
    PADDING_MODES,
    NoiseLevel,
    PaddingMode,
    VolumeMode,
    volume_curve,
)

#: Keeps the noise normalisation finite if a drawn noise vector were all zeros.
_EPSILON = 1e-12


def static_samples(inputs: Any, layer: keras.layers.Layer) -> int:
    """Clip length, which must be static: per-length constants (spectra, curves) are built from it."""
    samples = inputs.shape[-1]
    if samples is None:
        raise ValueError(f"{type(layer).__name__} needs a static number of samples; got shape {inputs.shape}")
    return int(samples)


def pink_spectrum_scales(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin standard deviations of the real and imaginary Fourier parts of 1/f noise.

    Mirrors ``colorednoise.powerlaw_psd_gaussian(1, samples)``: amplitude ~ f**-0.5, the DC bin takes
    the scale of the lowest non-zero frequency (1/samples), DC (and Nyquist for even lengths) are real
    with their magnitude corrected by sqrt(2). The overall variance is irrelevant (the noise is
    normalised afterwards).
    """
    freqs = np.fft.rfftfreq(samples)
    freqs[0] = freqs[1] if samples > 1 else 1.0
    scale = freqs**-0.5
    real, imag = scale.copy(), scale.copy()
    imag[0] = 0.0
    real[0] *= np.sqrt(2.0)
    if samples % 2 == 0:
        imag[-1] = 0.0
        real[-1] *= np.sqrt(2.0)
    return real.astype(np.float32), imag.astype(np.float32)


class SNRNoise(RandomTransform):
    """Adds noise at a per-example SNR ~ U(min_snr, max_snr) dB; subclasses choose the noise colour.

    ``level="rms"`` (default) makes the SNR a true power ratio: noise RMS = signal RMS / 10**(snr/20).
    ``level="peak"`` uses peak amplitudes on both, as the original notebook did.
    """

    def __init__(
        self,
        min_snr: float = 5.0,
        max_snr: float = 20.0,
        level: NoiseLevel = "rms",
        p: float = 0.5,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        if float(min_snr) > float(max_snr):
            raise ValueError(f"{type(self).__name__}: min_snr ({min_snr}) exceeds max_snr ({max_snr})")
        if level not in NOISE_LEVELS:
            raise ValueError(f"{type(self).__name__}: level must be one of {NOISE_LEVELS}, got {level!r}")
        self.min_snr = float(min_snr)
        self.max_snr = float(max_snr)
        self.level = level

    def noise(self, inputs: Any) -> Any:
        """Unscaled noise with the shape of ``inputs``; subclasses implement it."""
        raise NotImplementedError

    def amplitude(self, x: Any) -> Any:
        """Per-example level (batch, 1): RMS or peak, as chosen."""
        if self.level == "rms":
            return ops.sqrt(ops.mean(ops.square(x), axis=-1, keepdims=True))
        return ops.max(ops.abs(x), axis=-1, keepdims=True)

    def transform(self, inputs: Any) -> Any:
        snr = self.uniform((batch_size(inputs), 1), self.min_snr, self.max_snr)
        a_noise = self.amplitude(inputs) / ops.power(10.0, snr / 20.0)
        noise = ops.cast(self.noise(inputs), inputs.dtype)
        return inputs + noise / ops.maximum(self.amplitude(noise), _EPSILON) * a_noise

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(min_snr=self.min_snr, max_snr=self.max_snr, level=self.level)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class GaussianNoiseSNR(SNRNoise):
    """White Gaussian noise at a random SNR."""

    def noise(self, inputs: Any) -> Any:
        return keras.random.normal(ops.shape(inputs), seed=self.seed_generator)


@keras.saving.register_keras_serializable(package="rfcx")
class PinkNoiseSNR(SNRNoise):
    """Pink (1/f power spectrum) noise at a random SNR, synthesised in the frequency domain.

    Draws independent Gaussian real and imaginary parts per rFFT bin, scaled by f**-0.5 (as
    ``colorednoise`` does), and inverts with ``keras.ops.irfft``: one batched inverse FFT per call.
    """

    def noise(self, inputs: Any) -> Any:
        samples = static_samples(inputs, self)
        real_scale, imag_scale = pink_spectrum_scales(samples)
        shape = (batch_size(inputs), real_scale.shape[0])
        real = keras.random.normal(shape, seed=self.seed_generator) * ops.convert_to_tensor(real_scale)
        imag = keras.random.normal(shape, seed=self.seed_generator) * ops.convert_to_tensor(imag_scale)
        return ops.irfft((real, imag), fft_length=samples)


@keras.saving.register_keras_serializable(package="rfcx")
class TimeShift(RandomTransform):
    """Shift each clip by its own integer number of samples in [-max_shift, max_shift].

    ``padding="replace"`` rolls (what leaves one end re-enters at the other); ``"zero"`` rolls then
    silences the wrapped part: the first ``shift`` samples for a positive shift, the last ``|shift|``
    for a negative one. Implemented as one gather with per-example indices.
    """

    def __init__(
        self,
        max_shift_seconds: float = 2.0,
        sample_rate: int = SAMPLE_RATE,
        padding: PaddingMode = "replace",
        p: float = 0.5,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        if padding not in PADDING_MODES:
            raise ValueError(f"TimeShift: padding must be one of {PADDING_MODES}, got {padding!r}")
        self.max_shift_seconds = float(max_shift_seconds)
        self.sample_rate = int(sample_rate)
        self.padding = padding

    @property
    def max_shift(self) -> int:
        return int(round(self.sample_rate * self.max_shift_seconds))

    def shift(self, inputs: Any, shifts: Any) -> Any:
        """Apply given per-example shifts (batch, 1) int32 along axis 1 (samples of a waveform, frames of a
        spectrogram); exposed so tests can pin exact positions.

        One gather of whole rows (everything after axis 1 moves together) from the batch flattened to
        (batch * length, ...): on a (batch, frames, n_mels) spectrogram that copies contiguous rows, about ten
        times cheaper on a CPU than an element-wise ``take_along_axis``."""
        shape = ops.shape(inputs)
        length = inputs.shape[1]
        positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        shifts = ops.reshape(ops.cast(shifts, "int32"), (-1, 1))
        source = ops.mod(positions - shifts, length) + ops.expand_dims(ops.arange(shape[0], dtype="int32"), 1) * length
        flat = ops.reshape(inputs, (-1, *inputs.shape[2:]))
        shifted = ops.reshape(ops.take(flat, ops.reshape(source, (-1,)), axis=0), shape)
        if self.padding == "replace":
            return shifted
        kept = ops.logical_and(positions >= shifts, positions < length + shifts)
        kept = ops.reshape(kept, (-1, length, *(1,) * (len(inputs.shape) - 2)))
        return ops.where(kept, shifted, ops.zeros_like(shifted))

    def transform(self, inputs: Any, **context: Any) -> Any:
        """``context`` (the power stage's ``signal_power``) is not needed: a shift moves whatever axis 1 holds."""
        return self.shift(inputs, self.randint((batch_size(inputs), 1), -self.max_shift, self.max_shift))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(max_shift_seconds=self.max_shift_seconds, sample_rate=self.sample_rate, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class VolumeControl(RandomTransform):
    """Gain of db ~ U(-db_limit, db_limit) dB per clip, shaped over time: gain = 10**(db * curve / 20).

    ``curve`` is ``reference.volume_curve(samples, mode)``: uniform (constant gain), fade (full change
    at the start, none at the end), cosine or sine (one period over the clip).
    """

    def __init__(
        self,
        db_limit: float = 10.0,
        mode: VolumeMode = "uniform",
        p: float = 0.5,
        always_apply: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(p=p, always_apply=always_apply, seed=seed, **kwargs)
        volume_curve(2, mode)  # rejects an unknown mode now rather than at the first call
        self.db_limit = float(db_limit)
        self.mode = mode

    def gain(self, inputs: Any, db: Any) -> Any:
        """Gain curves (batch, samples), or (batch, 1) for uniform, for given per-example dB changes (batch, 1)."""
        if self.mode == "uniform":  # the curve is all ones: a (batch, 1) gain broadcasts for free
            return ops.power(10.0, db / 20.0)
        curve = ops.convert_to_tensor(volume_curve(static_samples(inputs, self), self.mode).astype(np.float32))
        return ops.power(10.0, db * curve / 20.0)

    def transform(self, inputs: Any) -> Any:
        db = self.uniform((batch_size(inputs), 1), -self.db_limit, self.db_limit)
        return inputs * ops.cast(self.gain(inputs, db), inputs.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(db_limit=self.db_limit, mode=self.mode)
        return config
