"""Per-clip numpy implementations of the reference augmentation recipe.

These are the semantics the batched Keras layers reproduce. They serve three purposes: the
benchmark baseline (what the recipe cost on the host, clip by clip), the host-side option for
transforms that have no device equivalent (``PitchShift(method="librosa")``), and the ground truth
the tests compare the batched layers with. Numpy only (plus librosa and colorednoise): nothing here
imports keras, so host data-loading workers stay light.

Every transform takes the clip and an explicit ``np.random.Generator`` so results are reproducible.

Deliberate differences from the original Kaggle notebook, chosen so that every parameter means what
its name says (the batched layers share them):

* noise level: the notebook scaled by peak amplitude (``max|y|``) on both signal and noise; the
  default here is RMS (``level="rms"``), so ``min_snr``/``max_snr`` are true power SNRs.
  ``level="peak"`` restores the notebook's behaviour.
* integer ranges include both ends (pitch steps in [-max_steps, max_steps], time shift in
  [-max_shift, max_shift]); the notebook's ``np.random.randint`` excluded the upper end.
* ``TimeShift(padding="zero")`` with a shift of 0 leaves the clip alone; the notebook zeroed the whole
  clip in that case (``augmented[0:] = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import colorednoise
import librosa
import numpy as np

NoiseLevel = Literal["rms", "peak"]
PaddingMode = Literal["replace", "zero"]
VolumeMode = Literal["uniform", "fade", "cosine", "sine"]

NOISE_LEVELS: tuple[str, ...] = ("rms", "peak")
PADDING_MODES: tuple[str, ...] = ("replace", "zero")
VOLUME_MODES: tuple[str, ...] = ("uniform", "fade", "cosine", "sine")


class HostTransform(Protocol):
    """What the host-side stage calls: one clip and a generator in, one clip out."""

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# Pure helpers shared with the batched layers, so both sides compute the same curves.
# ---------------------------------------------------------------------------------------------


def signal_level(y: np.ndarray, level: NoiseLevel, axis: int = -1) -> np.ndarray:
    """Amplitude used to scale added noise: RMS (true SNR) or peak (the notebook's choice)."""
    if level == "rms":
        return np.sqrt(np.mean(np.square(y, dtype=np.float64), axis=axis, keepdims=True))
    return np.max(np.abs(y), axis=axis, keepdims=True).astype(np.float64)


def volume_curve(n: int, mode: VolumeMode) -> np.ndarray:
    """Shape in [-1, 1] that multiplies the drawn dB change along the clip; gain = 10**(db * curve / 20).

    uniform: 1 everywhere; fade: 1 -> 0 linearly (full change at the start, none at the end);
    cosine / sine: one full period over the clip.
    """
    if mode == "uniform":
        return np.ones(n, dtype=np.float64)
    if mode == "fade":
        return np.arange(n)[::-1] / (n - 1)
    phase = np.arange(n) / n * np.pi * 2
    if mode == "cosine":
        return np.cos(phase)
    if mode == "sine":
        return np.sin(phase)
    raise ValueError(f"unknown volume mode {mode!r}; expected one of {VOLUME_MODES}")


def time_shift(y: np.ndarray, shift: int, padding: PaddingMode) -> np.ndarray:
    """Roll ``y`` right by ``shift`` samples; with zero padding, silence the part that wrapped around."""
    shifted = np.roll(y, shift)
    if padding == "zero":
        if shift > 0:
            shifted[:shift] = 0
        elif shift < 0:
            shifted[shift:] = 0
    return shifted


def add_noise_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float, level: NoiseLevel) -> np.ndarray:
    """Add ``noise`` scaled so that level(y) / level(noise) equals ``snr_db`` (amplitude ratio in dB)."""
    a_noise = signal_level(y, level) / 10 ** (snr_db / 20)
    scaled = noise / np.maximum(signal_level(noise, level), 1e-12) * a_noise
    return (y + scaled).astype(y.dtype)


# ---------------------------------------------------------------------------------------------
# The transforms.
# ---------------------------------------------------------------------------------------------


class AudioTransform:
    """Applied when ``always_apply`` or ``rng.uniform() < p``, as in the reference recipe."""

    def __init__(self, always_apply: bool = False, p: float = 0.5) -> None:
        self.always_apply = always_apply
        self.p = p

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.always_apply or rng.uniform() < self.p:
            return self.apply(y, rng)
        return y

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class _NoiseSNR(AudioTransform):
    """Adds noise at a uniformly drawn SNR in [min_snr, max_snr] dB; subclasses say which noise."""

    def __init__(
        self,
        always_apply: bool = False,
        p: float = 0.5,
        min_snr: float = 5.0,
        max_snr: float = 20.0,
        level: NoiseLevel = "rms",
    ) -> None:
        super().__init__(always_apply, p)
        self.min_snr = min_snr
        self.max_snr = max_snr
        self.level = level

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        snr = rng.uniform(self.min_snr, self.max_snr)
        return add_noise_at_snr(y, self.noise(len(y), rng), snr, self.level)


class GaussianNoiseSNR(_NoiseSNR):
    """White Gaussian noise at a random SNR."""

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(n)


class PinkNoiseSNR(_NoiseSNR):
    """Pink (1/f power) noise at a random SNR, from ``colorednoise`` as in the reference."""

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return colorednoise.powerlaw_psd_gaussian(1, n, random_state=rng)


class PitchShift(AudioTransform):
    """``librosa.effects.pitch_shift`` by an integer number of semitones in [-max_steps, max_steps]."""

    def __init__(self, always_apply: bool = False, p: float = 0.5, max_steps: int = 5, sr: int = 48_000) -> None:
        super().__init__(always_apply, p)
        self.max_steps = max_steps
        self.sr = sr

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n_steps = int(rng.integers(-self.max_steps, self.max_steps, endpoint=True))
        return librosa.effects.pitch_shift(y, sr=self.sr, n_steps=n_steps).astype(y.dtype)


class TimeShift(AudioTransform):
    """Shift by an integer number of samples in [-sr * max_shift_seconds, sr * max_shift_seconds]."""

    def __init__(
        self,
        always_apply: bool = False,
        p: float = 0.5,
        max_shift_seconds: float = 2.0,
        sr: int = 48_000,
        padding: PaddingMode = "replace",
    ) -> None:
        super().__init__(always_apply, p)
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        self.max_shift = int(round(sr * max_shift_seconds))
        self.padding = padding

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shift = int(rng.integers(-self.max_shift, self.max_shift, endpoint=True))
        return time_shift(y, shift, self.padding)


class VolumeControl(AudioTransform):
    """Gain of ``db ~ U(-db_limit, db_limit)`` dB shaped over time by ``volume_curve(mode)``."""

    def __init__(self, always_apply: bool = False, p: float = 0.5, db_limit: float = 10.0, mode: VolumeMode = "uniform") -> None:
        super().__init__(always_apply, p)
        volume_curve(2, mode)  # validates mode early
        self.db_limit = db_limit
        self.mode = mode

    def apply(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        db = rng.uniform(-self.db_limit, self.db_limit)
        return (y * 10 ** (db * volume_curve(len(y), self.mode) / 20)).astype(y.dtype)


class Compose:
    """Apply transforms in order; the whole sequence is itself gated by ``p``."""

    def __init__(self, transforms: Sequence[HostTransform], p: float = 1.0) -> None:
        self.transforms = list(transforms)
        self.p = p

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.uniform() >= self.p:
            return y
        for transform in self.transforms:
            y = transform(y, rng)
        return y


class OneOf:
    """Pick one transform uniformly and apply it (with its own gating); gated by ``p``."""

    def __init__(self, transforms: Sequence[HostTransform], p: float = 1.0) -> None:
        self.transforms = list(transforms)
        self.p = p

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.uniform() >= self.p:
            return y
        return self.transforms[int(rng.integers(len(self.transforms)))](y, rng)
