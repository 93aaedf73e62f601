"""Batched augmentations on the mel power spectrogram (batch, frames, n_mels), inside the log-mel front end.

Why a fourth stage: on a CPU the waveform transforms each cost about as much as the STFT itself (a 5 s clip is
240,000 samples; drawing 240,000 normals, an inverse FFT for pink noise, a per-example gather for the roll and an
exponential per sample for a fade curve). The same clip's mel power image is 470 frames x 64 bands = 30,000 values,
and noise, gain and time shift act on it (nearly) linearly, so the same augmentations cost a few percent of the
front end there. They are the fast default (``domain: spectrogram``); ``domain: waveform`` keeps the exact waveform
layers of ``rfcx.model.augment.waveform``.

How close each is to its waveform counterpart (``tests/test_augment_power.py`` measures it on the mel image):

* ``SpectralNoiseSNR`` adds the mel power that white or pink noise at the drawn SNR adds: the noise's expected mel
  power per unit variance (``noise_mel_statistics``: real noise, measured once per front-end setting through the same
  STFT and filterbank) times, per frame and band, a random factor with the mean and variance that the real noise's
  power has in that band. The SNR is the waveform's (signal mean square over noise variance). Not reproduced: the
  signal x noise interference term (zero mean) and the correlation between overlapping frames.
* ``SpectralTimeShift`` rolls whole frames (one hop, 10.7 ms at 48 kHz): identical to the spectrogram of the shifted
  waveform for shifts that are multiples of the hop, except for the frames at the seam.
* ``SpectralVolumeControl`` scales each frame's power by the squared gain at the frame's centre: exact for a uniform
  gain, and for fade/cosine/sine up to the curve's change within one frame (43 ms).

The front end calls this stage with one keyword argument, ``signal_power`` (batch, 1): each clip's mean square.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import colorednoise
import keras
import librosa
import numpy as np
from keras import ops

from rfcx.constants import SAMPLE_RATE
from rfcx.model.augment.compose import batch_size
from rfcx.model.augment.reference import volume_curve
from rfcx.model.augment.waveform import SNRNoise, TimeShift, VolumeControl
from rfcx.model.features import mel_filterbank

NoiseColour = Literal["white", "pink"]
NOISE_COLOURS: tuple[str, ...] = ("white", "pink")
#: Length of the noise measured for ``noise_mel_statistics``: ~2,800 frames, so band means are within ~2%.
_STATISTICS_SECONDS: float = 30.0


@functools.lru_cache(maxsize=32)
def noise_mel_statistics(colour: NoiseColour, sample_rate: int, n_fft: int, hop_length: int, fmin: float,
                         fmax: float, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean mel power per band of unit-variance noise, and its equivalent degrees of freedom (mean^2 / variance).

    Measured, not derived: 30 s of white (numpy) or pink (``colorednoise``, the reference's generator) noise, scaled
    to mean square 1, through librosa's STFT (Hann, ``center=False`` so no padded frame biases it) and the front
    end's filterbank. A fixed seed makes it a constant of the front-end settings.
    """
    if colour not in NOISE_COLOURS:
        raise ValueError(f"noise colour must be one of {NOISE_COLOURS}, got {colour!r}")
    rng = np.random.default_rng(0)
    samples = int(_STATISTICS_SECONDS * sample_rate)
    noise = rng.standard_normal(samples) if colour == "white" else colorednoise.powerlaw_psd_gaussian(1, samples, random_state=rng)
    noise = (noise / np.sqrt(np.mean(np.square(noise)))).astype(np.float32)
    power = np.abs(librosa.stft(noise, n_fft=n_fft, hop_length=hop_length, window="hann", center=False)) ** 2
    mel = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).astype(np.float64) @ power
    mean, variance = mel.mean(axis=1), mel.var(axis=1)
    return mean.astype(np.float32), (mean**2 / np.maximum(variance, 1e-30)).astype(np.float32)


def _require(value: Any, name: str, layer: keras.layers.Layer) -> Any:
    if value is None:
        raise ValueError(f"{type(layer).__name__} works on the mel power inside LogMelSpectrogram, which passes "
                         f"{name}; it was called without it")
    return value


@keras.saving.register_keras_serializable(package="rfcx")
class SpectralNoiseSNR(SNRNoise):
    """White or pink noise at a per-example SNR ~ U(min_snr, max_snr) dB, added as mel power (see module doc).

    Noise variance = signal mean square / 10**(snr/10): the waveform's SNR, as ``level="rms"`` means for the
    waveform layers (``level="peak"`` needs the waveform: use ``domain: waveform``). The per-cell factor is
    lognormal with the band's mean 1 and variance 1/dof: positive, cheap (one normal per cell), right first two
    moments.
    """

    def __init__(self, colour: NoiseColour = "white", sample_rate: int = SAMPLE_RATE, n_fft: int = 2048,
                 hop_length: int = 512, fmin: float = 84.0, fmax: float = 15056.0, n_mels: int = 64,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.level != "rms":
            raise ValueError(f"SpectralNoiseSNR measures the SNR by power (level rms), got level={self.level!r}; "
                             "use domain: waveform for peak levels")
        self.colour = colour
        self.front_end = {"sample_rate": int(sample_rate), "n_fft": int(n_fft), "hop_length": int(hop_length),
                          "fmin": float(fmin), "fmax": float(fmax), "n_mels": int(n_mels)}
        mean, dof = noise_mel_statistics(colour, **self.front_end)
        self._unit_power = mean
        self._log_sigma = np.sqrt(np.log1p(1.0 / dof)).astype(np.float32)

    def noise_variance(self, inputs: Any, signal_power: Any) -> Any:
        """Per-example noise variance (batch, 1, 1): the clip's mean square over 10**(snr/10), snr drawn in range."""
        snr = self.uniform((batch_size(inputs), 1, 1), self.min_snr, self.max_snr)
        return ops.reshape(signal_power, (-1, 1, 1)) / ops.power(10.0, snr / 10.0)

    def transform(self, inputs: Any, signal_power: Any = None) -> Any:
        signal_power = _require(signal_power, "signal_power", self)
        variance = self.noise_variance(inputs, signal_power)
        sigma = ops.convert_to_tensor(self._log_sigma)
        factor = ops.exp(keras.random.normal(ops.shape(inputs), seed=self.seed_generator) * sigma - 0.5 * sigma * sigma)
        return inputs + variance * ops.convert_to_tensor(self._unit_power) * factor

    @staticmethod
    def one_of(layers: list[SpectralNoiseSNR], choice: Any, inputs: Any, signal_power: Any = None) -> Any:
        """``OneOf(layers)`` with ``choice`` (batch,) already drawn: each example gets the noise of its picked layer
        (that layer's SNR range, gate ``p``, band powers and spread), from one normal draw per mel cell shared by all
        the layers instead of one each.

        Per example the result has the same distribution as computing every layer for the whole batch and keeping
        the picked one (what ``OneOf`` does for other transforms), since an example uses only its own layer's draw;
        the per-cell draw and its exponential are most of the cost (the demo's Gaussian/pink OneOf: 1.8 of 6.4 ms
        per window on a CPU), so two colours cost about one.
        """
        signal_power = _require(signal_power, "signal_power", layers[0])
        picked = ops.one_hot(choice, len(layers), dtype=inputs.dtype)  # (batch, k)

        def of_picked(values: list[Any]) -> Any:  # one (batch, ...) tensor per layer -> the picked layer's, per example
            stacked = ops.stack(values, axis=-1)
            return ops.sum(stacked * ops.reshape(picked, (-1,) + (1,) * (len(stacked.shape) - 2) + (len(layers),)),
                           axis=-1)

        variance = of_picked([layer.noise_variance(inputs, signal_power) for layer in layers])
        keep = of_picked([ops.cast(layer.apply_mask(inputs) if layer.gated else ops.ones((batch_size(inputs),)),
                                   inputs.dtype) for layer in layers])
        # (batch, 1, n_mels): band statistics of the picked colour
        unit_power = np.stack([layer._unit_power for layer in layers])  # (k, n_mels)
        log_sigma = np.stack([layer._log_sigma for layer in layers])
        unit = ops.expand_dims(ops.matmul(picked, ops.convert_to_tensor(unit_power)), 1)
        sigma = ops.expand_dims(ops.matmul(picked, ops.convert_to_tensor(log_sigma)), 1)
        normal = keras.random.normal(ops.shape(inputs), seed=layers[0].seed_generator)
        factor = ops.exp(normal * sigma - 0.5 * sigma * sigma)
        return inputs + ops.reshape(keep, (-1, 1, 1)) * variance * unit * factor

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(colour=self.colour, **self.front_end)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class SpectralTimeShift(TimeShift):
    """``TimeShift`` by whole STFT frames: the shift in [-max_shift, max_shift] frames, max_shift the seconds in hops.

    ``replace`` rolls the frames; ``zero`` gives the wrapped frames zero power (silence)."""

    def __init__(self, hop_length: int = 512, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hop_length = int(hop_length)

    @property
    def max_shift(self) -> int:
        return int(round(self.sample_rate * self.max_shift_seconds / self.hop_length))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(hop_length=self.hop_length)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class SpectralVolumeControl(VolumeControl):
    """``VolumeControl`` on power: each frame times 10**(db * curve(centre) / 10), the curve read at frame centres
    (sample t * hop, as the front end frames with ``center=True``). The clip length is known only to within a hop
    from the frame count (frames = 1 + samples // hop); the curve is laid over the middle of that range, which moves
    it by at most hop / 2 samples (0.1 % of a 5 s clip)."""

    def __init__(self, hop_length: int = 512, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hop_length = int(hop_length)

    def frame_curve(self, frames: int) -> np.ndarray:
        """The gain curve at each frame's centre sample, (frames, 1) float32."""
        samples = (frames - 1) * self.hop_length + self.hop_length // 2
        centres = np.minimum(np.arange(frames) * self.hop_length, samples - 1)
        return volume_curve(samples, self.mode)[centres][:, None].astype(np.float32)

    def scale(self, inputs: Any, db: Any) -> Any:
        """Apply given per-example dB changes (batch, 1, 1); exposed so tests can pin them."""
        curve = ops.convert_to_tensor(self.frame_curve(inputs.shape[1]))
        return inputs * ops.power(10.0, db * curve / 10.0)

    def transform(self, inputs: Any, signal_power: Any = None) -> Any:
        return self.scale(inputs, self.uniform((batch_size(inputs), 1, 1), -self.db_limit, self.db_limit))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(hop_length=self.hop_length)
        return config
