"""Backgrounds of synthetic recordings: coloured noise, an insect chorus band and rain bursts.

Every recording gets all three kinds of sound a real rainforest recording has between calls, so that a detector
cannot key on silence: a stationary coloured noise (between white and brown), a narrow insect chorus with slow
loudness changes, and occasional broadband rain bursts with a fast decay. (Faint distant calls of random species are
also part of the background; they are planned as calls in writer.py because they need the species catalogue.)

The plan (all random choices) is drawn in the parent process; the noise samples are drawn in the worker from the
recording's own RNG, so the result does not depend on which process renders it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from rfcx.constants import RECORDING_SECONDS, SAMPLE_RATE
from rfcx.data.synth.scales import SynthScale
from rfcx.data.synth.species import complex_noise, rfft_freqs, shaped_noise, unit_rms

#: Below this frequency every background noise is cut: brown noise would otherwise put all its power (and the
#: recording's peak) at a few Hz, far below anything the detector looks at.
LOW_CUT_HZ: float = 40.0


@dataclass(frozen=True)
class RainBurst:
    """A rain burst: starts loud at t_start and decays exponentially with time constant decay_s."""

    t_start: float
    duration: float
    decay_s: float
    level_db: float
    exponent: float


@dataclass(frozen=True)
class BackgroundPlan:
    """Random choices for one recording's background."""

    #: Spectral exponent of the coloured noise: 0 = white, 1 = pink, 2 = brown.
    noise_exponent: float
    insect_band: tuple[float, float]
    #: Insect band power relative to the coloured noise's power in the same band, dB.
    insect_level_db: float
    insect_am_rate: float
    insect_am_depth: float
    insect_am_phase: float
    rain: tuple[RainBurst, ...]


def plan_background(rng: np.random.Generator, scale: SynthScale) -> BackgroundPlan:
    """Draw one recording's background parameters."""
    centre = rng.uniform(4500.0, 8500.0)
    width = rng.uniform(300.0, 1200.0)
    return BackgroundPlan(
        noise_exponent=float(rng.uniform(0.0, 2.0)),
        insect_band=(round(centre - width / 2, 1), round(centre + width / 2, 1)),
        insect_level_db=float(rng.uniform(6.0, 18.0)),
        # A whole number of cycles per recording, so the AM can be applied exactly in the frequency domain.
        insect_am_rate=int(rng.integers(3, 19)) / RECORDING_SECONDS,
        insect_am_depth=float(rng.uniform(0.3, 0.7)),
        insect_am_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        rain=tuple(_plan_rain(rng) for _ in range(rng.poisson(scale.rain_bursts_mean))),
    )


def _plan_rain(rng: np.random.Generator) -> RainBurst:
    """One rain burst of 1.5-5 s anywhere in the recording."""
    duration = float(rng.uniform(1.5, 5.0))
    return RainBurst(
        t_start=float(rng.uniform(0.0, RECORDING_SECONDS - duration)),
        duration=duration,
        decay_s=float(rng.uniform(0.3, 1.0)),
        level_db=float(rng.uniform(0.0, 15.0)),
        exponent=float(rng.uniform(0.0, 1.0)),
    )


def coloured_gain(n: int, exponent: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Amplitude spectrum f^(-exponent/2) (power f^-exponent), flat below 100 Hz and cut below LOW_CUT_HZ."""
    freqs = rfft_freqs(n, sr)
    gain = (np.maximum(freqs, 100.0) / 1000.0) ** (-exponent / 2.0)
    gain[freqs < LOW_CUT_HZ] = 0.0
    return gain


def render_background(plan: BackgroundPlan, rng: np.random.Generator, n: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Render the background (float32): unit-RMS coloured noise plus the insect chorus and rain at their levels.

    Noise and chorus are summed as spectra and cost a single inverse FFT of the whole recording.
    """
    spectrum = complex_noise(n // 2 + 1, rng) * coloured_gain(n, plan.noise_exponent, sr).astype(np.float32)
    spectrum /= np.float32(np.sqrt(_spectrum_energy(spectrum, n) / n))
    _add_insect_chorus(spectrum, plan, rng, n, sr)
    out = sp_fft.irfft(spectrum, n=n).astype(np.float32)
    for burst in plan.rain:
        _add_rain(out, burst, rng, sr)
    return out


def _spectrum_energy(spectrum: np.ndarray, n: int) -> float:
    """Time-domain energy (sum of squares) of irfft(spectrum, n), by Parseval, without the inverse FFT."""
    power = np.abs(spectrum.astype(np.complex128)) ** 2
    return float((2.0 * power.sum() - power[0] - (power[-1] if n % 2 == 0 else 0.0)) / n)


def _add_insect_chorus(spectrum: np.ndarray, plan: BackgroundPlan, rng: np.random.Generator, n: int,
                       sr: int) -> None:
    """Add (in place) a narrow noise band, insect_level_db above the coloured noise in that band, with slow AM.

    The AM 1 + depth*sin(2 pi k t / T + phase) is applied in the frequency domain: multiplying by it adds two copies
    of the band spectrum shifted by +-k bins, exact because the AM rate is a whole number of cycles per recording.
    Only the band's bins are touched, which keeps this cheap.
    """
    freqs = rfft_freqs(n, sr)
    lo, hi = np.searchsorted(freqs, plan.insect_band[0]), np.searchsorted(freqs, plan.insect_band[1], side="right")
    chorus = complex_noise(hi - lo, rng)
    target = np.sum(np.abs(spectrum[lo:hi]) ** 2) * 10.0 ** (plan.insect_level_db / 10.0)
    chorus *= np.float32(np.sqrt(target / np.sum(np.abs(chorus) ** 2)))
    k = int(round(plan.insect_am_rate * n / sr))
    side = plan.insect_am_depth / 2j
    spectrum[lo:hi] += chorus
    spectrum[lo + k : hi + k] += np.complex64(side * np.exp(1j * plan.insect_am_phase)) * chorus
    spectrum[lo - k : hi - k] -= np.complex64(side * np.exp(-1j * plan.insect_am_phase)) * chorus


def _add_rain(out: np.ndarray, burst: RainBurst, rng: np.random.Generator, sr: int) -> None:
    """Add one broadband burst in place: 20 ms attack, then exponential decay; level relative to the noise RMS."""
    start = int(round(burst.t_start * sr))
    length = min(int(round(burst.duration * sr)), out.size - start)
    noise = unit_rms(shaped_noise(length, coloured_gain(length, burst.exponent, sr), rng))
    t = np.arange(length) / sr
    envelope = np.minimum(t / 0.02, 1.0) * np.exp(-t / burst.decay_s)
    out[start : start + length] += (10.0 ** (burst.level_db / 20.0) * noise * envelope).astype(np.float32)
