"""The log-mel front end as backend-agnostic Keras 3 layers.

The front end runs inside the model (on device, batched) so that waveform augmentations can
run before it in the same compiled graph, and so that the exported `.keras` model takes raw
audio: prediction needs no separate feature pipeline that could drift from training.

It reproduces ``librosa.feature.melspectrogram(power=2)`` followed by
``librosa.power_to_db(ref=np.max, top_db=80)``, which is what the reference recipe computed per
clip in numpy, then resizes the time axis to a fixed width as the reference did with skimage.
"""

from __future__ import annotations

from typing import Any

import keras
import librosa
import numpy as np
from keras import ops

from rfcx.constants import SAMPLE_RATE

#: librosa.power_to_db's default floor on power before the log, kept identical so dB values match.
AMIN: float = 1e-10
#: The front end computes in float32 even under a mixed-precision policy: a bfloat16 waveform or
#: power spectrum would lose most of its dynamic range. The backbone after it casts to its own dtype.
FRONT_END_DTYPE: str = "float32"


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Return librosa's slaney-normalised mel filterbank, shape (n_mels, n_fft // 2 + 1), float32.

    librosa's own filterbank is used (not a re-derivation) so the layer is numerically the reference.
    """
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def mel_center_frequencies(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Return the centre frequency in Hz of each mel band (row 0 = lowest), as the filterbank places them.

    The filterbank's triangles have their edges on ``mel_frequencies(n_mels + 2)``; the centres are the
    inner points. Spectrogram-domain transforms (the mel pitch shift) need them to map rows to Hz.
    """
    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]


def resize_matrix(input_size: int, output_size: int) -> np.ndarray:
    """Antialiased linear resampling of one axis as an (input_size, output_size) matrix, float32.

    The weights of ``jax.image.resize`` / ``keras.ops.image.resize(..., "bilinear", antialias=True)``:
    a triangle kernel widened by the downsampling factor, centred on each output sample's position in
    input coordinates, normalised to sum to one. As a constant matrix it is a plain matmul, which
    compiles under XLA (TensorFlow's ``ScaleAndTranslate`` op behind the antialiased resize does not).
    """
    inv_scale = input_size / output_size
    kernel_scale = max(inv_scale, 1.0)
    centres = (np.arange(output_size) + 0.5) * inv_scale - 0.5
    distance = np.abs(centres[None, :] - np.arange(input_size)[:, None]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - distance)
    return (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="rfcx")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform (batch, samples) -> dB log-mel image (batch, n_mels, frames, 1), row 0 = lowest band.

    Each example is referenced to its own maximum (0 dB) and floored at ``-top_db``, as
    ``power_to_db(ref=np.max, top_db=top_db)`` does per clip. The log-mel itself is not an augmentation:
    it runs identically in training and inference.

    Framing matches librosa 0.11 (``center=True, pad_mode="constant"``): ``keras.ops.stft`` with
    ``center=True`` pads by reflection, so the layer zero-pads ``n_fft // 2`` on each side itself and
    calls ``stft`` with ``center=False``; edge frames then match librosa too.

    ``frames`` (if not None) resizes the time axis with antialiased linear resampling (``resize_matrix``:
    the weights of ``keras.ops.image.resize(antialias=True)``, applied as a matmul so it also compiles
    under XLA), the stand-in for the reference's ``skimage.transform.resize`` (which Gaussian-smooths
    then interpolates). The resize is applied to the dB image, as the reference did, so values stay
    in [-top_db, 0] (the resampling is a convex combination) but the maximum may fall slightly below 0.

    ``augment`` (optional) is the power stage of the augmentations (``rfcx.model.augment.power``): in training only, it
    transforms the mel power between the filterbank and the dB conversion, where noise, gain and time shift are
    cheap and (nearly) linear. It receives each clip's mean square (``signal_power``).
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = 2048,
        hop_length: int = 512,
        fmin: float = 84.0,
        fmax: float = 15056.0,
        n_mels: int = 64,
        frames: int | None = 128,
        top_db: float = 80.0,
        augment: keras.layers.Layer | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", FRONT_END_DTYPE)
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.n_mels = int(n_mels)
        self.frames = None if frames is None else int(frames)
        self.top_db = float(top_db)
        self.augment = augment
        # A constant rather than a weight: it is fully determined by the config, so reloading
        # recomputes it and the saved file cannot carry a stale filterbank.
        basis_t = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax).T
        # Only the STFT bins some band weighs: with fmax 15056 Hz at 48 kHz that is bins 3-642 of 1025, so the power
        # and the filterbank matmul skip the ~37% of the spectrum above fmax (and the few bins below fmin).
        used = np.flatnonzero(basis_t.any(axis=1))
        self._bins = (int(used[0]), int(used[-1]) + 1)
        self._mel_basis_t = basis_t[self._bins[0]:self._bins[1]]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Build the power-stage augmentations, if any, for the mel power this layer hands them."""
        if self.augment is not None and not self.augment.built:
            samples = input_shape[-1]
            frames = None if samples is None else self.native_frames(samples)
            self.augment.build((input_shape[0], frames, self.n_mels))
        self.built = True

    def native_frames(self, samples: int) -> int:
        """Number of STFT frames librosa (center=True) produces for ``samples`` samples."""
        return 1 + samples // self.hop_length

    def power_mel(self, waveform: Any) -> Any:
        """Mel power spectrogram (batch, frames, n_mels): |STFT|^2 with librosa framing, times the filterbank."""
        half = self.n_fft // 2
        padded = ops.pad(waveform, [[0, 0], [half, half]], mode="constant")
        real, imag = ops.stft(
            padded,
            sequence_length=self.n_fft,
            sequence_stride=self.hop_length,
            fft_length=self.n_fft,
            window="hann",
            center=False,
        )
        low, high = self._bins
        real, imag = real[..., low:high], imag[..., low:high]
        power = real * real + imag * imag
        return ops.matmul(power, ops.convert_to_tensor(self._mel_basis_t, dtype=power.dtype))

    def power_to_db(self, mel_power: Any) -> Any:
        """``librosa.power_to_db(ref=np.max, top_db)`` per example over all but the batch axis."""
        db = 10.0 * ops.log10(ops.maximum(mel_power, AMIN))
        axes = tuple(range(1, len(mel_power.shape)))
        db = db - ops.max(db, axis=axes, keepdims=True)
        return ops.maximum(db, -self.top_db)

    def resize_time(self, db: Any) -> Any:
        """Resample (batch, n_mels, native frames) to ``frames`` along time with ``resize_matrix``."""
        native = db.shape[-1]
        if native is None:
            raise ValueError("LogMelSpectrogram with frames set needs a static number of samples")
        if native == self.frames:
            return db
        resized = ops.matmul(db, ops.convert_to_tensor(resize_matrix(native, self.frames), dtype=db.dtype))
        # A convex combination: only float rounding can leave [-top_db, 0]; clip it back.
        return ops.clip(resized, -self.top_db, 0.0)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        waveform = ops.cast(inputs, "float32")
        augmenting = training and self.augment is not None
        signal_power = ops.mean(ops.square(waveform), axis=-1, keepdims=True) if augmenting else None
        return self.image(self.power_mel(waveform), signal_power, training)

    def image(self, power: Any, signal_power: Any = None, training: bool | None = None) -> Any:
        """Mel power (batch, frames, n_mels) -> [power augmentations, in training] -> the dB image
        (batch, n_mels, frames, 1): everything after the STFT, which ``MelPowerImage`` runs on cached mel power.
        `signal_power` is each clip's mean square (batch, 1), which the noises' SNR refers to."""
        if training and self.augment is not None:
            power = self.augment(power, training=True, signal_power=signal_power)
        db = ops.transpose(self.power_to_db(power), (0, 2, 1))  # (batch, n_mels, frames)
        if self.frames is not None:
            db = self.resize_time(db)
        return ops.expand_dims(db, -1)  # (batch, n_mels, frames, 1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        samples = input_shape[-1]
        frames = self.frames
        if frames is None:
            frames = None if samples is None else self.native_frames(samples)
        return (input_shape[0], self.n_mels, frames, 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            fmin=self.fmin,
            fmax=self.fmax,
            n_mels=self.n_mels,
            frames=self.frames,
            top_db=self.top_db,
            augment=None if self.augment is None else keras.saving.serialize_keras_object(self.augment),
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LogMelSpectrogram:
        config = dict(config)
        if config.get("augment") is not None:
            config["augment"] = keras.saving.deserialize_keras_object(config["augment"])
        return cls(**config)


class MelPowerImage(keras.layers.Layer):
    """The second half of a ``LogMelSpectrogram`` as a layer of its own: [mel power (batch, frames, n_mels), each
    clip's mean square (batch, 1)] -> the same dB image, through the same layer object (its power augmentations
    included). Training from the mel-power cache (``rfcx.data.mel_cache``) starts here instead of at the waveform, so
    the STFT runs once per cached window instead of once per step; the detector that is saved still starts at the
    waveform. Never saved itself (only the detector is), hence not registered for serialisation."""

    def __init__(self, log_mel: LogMelSpectrogram, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", FRONT_END_DTYPE)
        super().__init__(**kwargs)
        self.log_mel = log_mel

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        power, signal_power = inputs
        return self.log_mel.image(ops.cast(power, "float32"), ops.cast(signal_power, "float32"), training)

    def compute_output_shape(self, input_shape: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        batch, frames, n_mels = input_shape[0]
        return (batch, n_mels, self.log_mel.frames or frames, 1)


class ImageScaling(keras.layers.Layer):
    """Base of the front end's fixed per-example image layers after the dB conversion (MinMaxScale, BandFloor):
    float32 under any policy (see FRONT_END_DTYPE), no weights, output shape = input shape."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", FRONT_END_DTYPE)
        super().__init__(**kwargs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="rfcx")
class MinMaxScale(ImageScaling):
    """Scale each example to [0, 1] by its own min and max (a constant example maps to all zeros).

    It comes after the spectrogram-domain augmentations so the network always sees the same range,
    whatever a mask or a pitch shift did to the dB image. Not an augmentation: always applied.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs: Any) -> Any:
        axes = tuple(range(1, len(inputs.shape)))
        low = ops.min(inputs, axis=axes, keepdims=True)
        high = ops.max(inputs, axis=axes, keepdims=True)
        return (inputs - low) / ops.maximum(high - low, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class BandFloor(ImageScaling):
    """Subtract each mel band's background floor, its ``quantile`` over time in dB, from a (batch, n_mels, frames, 1)
    dB image (spectral whitening per window).

    Field recordings differ far more in their stationary background (spectral tilt from white to brown noise, insect
    choruses holding one band for minutes) than a species' call differs between recordings; per-example min-max
    scaling keeps that tilt, so a from-scratch network must learn to ignore it from few examples. Subtracting each
    band's floor leaves the calls standing out of a flat background. A call keeps its full height as long as it
    leaves its band quiet for at least ``quantile`` of the window (the median: half of it); a lower quantile spares
    longer calls but is a noisier estimate of the floor. Not an augmentation: applied identically in training and
    inference.
    """

    def __init__(self, quantile: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"BandFloor quantile must be in (0, 1), got {quantile}")
        self.quantile = float(quantile)

    def call(self, inputs: Any) -> Any:
        floor = ops.quantile(inputs, self.quantile, axis=2, keepdims=True)
        return inputs - ops.stop_gradient(floor)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(quantile=self.quantile)
        return config


@keras.saving.register_keras_serializable(package="rfcx")
class NoiseGate(ImageScaling):
    """After ``BandFloor``: keep only what rises more than ``gate_db`` above its band's floor, ``max(x - gate_db, 0)``.

    A background's own fluctuations reach a few dB above its median (on the demo's test recordings the 99th
    percentile of a call-free window is ~4 dB), a call typically 10-30 dB: gating at a few dB leaves a window of
    background alone nearly blank, so the detector has nothing to mistake for a call, and keeps the calls (minus the
    gate). Not an augmentation: applied identically in training and inference.
    """

    def __init__(self, gate_db: float = 3.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if gate_db < 0:
            raise ValueError(f"NoiseGate gate_db must be >= 0, got {gate_db}")
        self.gate_db = float(gate_db)

    def call(self, inputs: Any) -> Any:
        return ops.maximum(inputs - self.gate_db, 0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gate_db": self.gate_db}


@keras.saving.register_keras_serializable(package="rfcx")
class FrequencyChannel(keras.layers.Layer):
    """Append a channel holding each row's mel-band position in [0, 1] (0 = lowest band).

    A convolutional backbone with global pooling is blind to where in frequency a pattern sits, yet species
    differ by band as much as by shape; this coordinate channel lets the network use absolute frequency.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", FRONT_END_DTYPE)
        super().__init__(**kwargs)

    def call(self, inputs: Any) -> Any:
        n_mels = inputs.shape[1]
        ramp = ops.reshape(ops.linspace(0.0, 1.0, n_mels), (1, n_mels, 1, 1))
        ramp = ops.broadcast_to(ops.cast(ramp, inputs.dtype), ops.shape(inputs))
        return ops.concatenate([inputs, ramp], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], input_shape[-1] + 1)
