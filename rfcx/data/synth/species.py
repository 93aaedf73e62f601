"""The 24 synthetic species: call families (how a call sounds) and the catalogue (which species sings what, where).

A *family* is a vectorised numpy function that turns a duration, a frequency band and a few parameters into a
waveform. A *species* is a family plus a band, a duration range, family parameters and 1-3 song types. Several
species deliberately share a band and differ only by pattern (up- vs down-sweep, U vs arch, slow vs fast trill,
up- vs down-chirp series vs buzz) so that a model has to learn shapes, not just frequency bands.

The parameters are chosen for the resolution the detector sees: a log-mel image with 64 mel bands over 84-15056 Hz
and about 78 ms per frame. Rates that must be *seen* (vibrato, beads, slow trills, chirp series) stay below
about 5 per second; fast trills (16/s) blur into a continuous band on purpose, which is what tells them apart from
slow ones in the same band.

This module also holds the small spectral-noise primitives that the call families and the backgrounds share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sp_fft
from scipy import signal as sp_signal

from rfcx.constants import N_SPECIES, SAMPLE_RATE

#: Lowest and highest frequency (Hz) any planted call may reach: the mel range the detector uses.
BAND_LIMITS: tuple[float, float] = (84.0, 15056.0)
#: Relative start-frequency jitter applied to every call (a few percent, as the brief asks).
FREQ_JITTER: float = 0.03
#: Song type ids in the order species use them: the real data uses 1 for the main song and 4 for others.
SONGTYPE_IDS: tuple[int, ...] = (1, 4, 2)

# --------------------------------------------------------------------------------------------------------------
# Spectral primitives (shared with the backgrounds)
# --------------------------------------------------------------------------------------------------------------


def rfft_freqs(n: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Frequencies (Hz) of the rfft bins of an n-sample signal."""
    return sp_fft.rfftfreq(n, 1.0 / sr)


def shaped_noise(n: int, gain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with the amplitude spectrum `gain` (one value per rfft bin), made in the frequency domain.

    Drawing the spectrum directly costs one inverse FFT, which is why every noise in the generator (coloured noise,
    insect band, rain, buzz calls, clicks) is made this way.
    """
    return sp_fft.irfft(complex_noise(gain.size, rng) * gain.astype(np.float32), n=n).astype(np.float32)


def complex_noise(m: int, rng: np.random.Generator) -> np.ndarray:
    """m complex64 standard normal values (real and imaginary parts drawn as one float32 block: fast)."""
    return rng.standard_normal(2 * m, dtype=np.float32).view(np.complex64)


def band_mask(n: int, f_lo: float, f_hi: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """0/1 rfft mask that keeps [f_lo, f_hi]: brick-wall so that noise energy stays inside the call's box."""
    freqs = rfft_freqs(n, sr)
    return ((freqs >= f_lo) & (freqs <= f_hi)).astype(np.float32)


def band_noise(n: int, f_lo: float, f_hi: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Unit-RMS Gaussian noise confined to [f_lo, f_hi]."""
    return unit_rms(shaped_noise(n, band_mask(n, f_lo, f_hi, sr), rng))


def bandpass(x: np.ndarray, f_lo: float, f_hi: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Brick-wall band-pass by FFT masking."""
    return sp_fft.irfft(sp_fft.rfft(x) * band_mask(x.size, f_lo, f_hi, sr), n=x.size)


def band_power(x: np.ndarray, f_lo: float, f_hi: float, sr: int = SAMPLE_RATE) -> float:
    """Energy of x inside [f_lo, f_hi] (sum of squared rfft magnitudes): the quantity SNRs are defined on."""
    spec = sp_fft.rfft(x)
    freqs = rfft_freqs(x.size, sr)
    sel = (freqs >= f_lo) & (freqs <= f_hi)
    return float(np.sum(np.abs(spec[sel]) ** 2))


def unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale x to RMS 1 (left alone when silent) so that families are comparable before SNR scaling."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return x / rms if rms > 0 else x


def tone(freq_track: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Sine whose instantaneous frequency follows freq_track (Hz per sample): phase is the running integral."""
    return np.sin(2.0 * np.pi * np.cumsum(freq_track) / sr)


def edge_envelope(n: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Raised-cosine onset and offset (15% of the call, 5-80 ms) so that calls start and stop without clicks."""
    ramp = int(min(max(0.15 * n, 0.005 * sr), 0.08 * sr, n // 2))
    env = np.ones(n)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp] = rise
        env[n - ramp :] = rise[::-1]
    return env


# --------------------------------------------------------------------------------------------------------------
# Call families. Each takes t (seconds from call start), the band and the parameters and returns a waveform whose
# instantaneous frequencies span exactly [f_lo, f_hi], so that the box written to the CSV is the call's true band.
# --------------------------------------------------------------------------------------------------------------

Params = Mapping[str, float]
Family = Callable[[np.ndarray, float, float, Params, np.random.Generator], np.ndarray]


def _fraction(t: np.ndarray) -> np.ndarray:
    """Position inside the call, 0 at the start and 1 at the end."""
    return t / t[-1] if t.size > 1 else np.zeros_like(t)


def tone_vibrato(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Whistle whose pitch wobbles sinusoidally across the band at p['rate'] Hz (calls last >= one wobble)."""
    phase = rng.uniform(0.0, 2.0 * np.pi)
    centre, depth = 0.5 * (f_lo + f_hi), 0.5 * (f_hi - f_lo)
    return tone(centre + depth * np.sin(2.0 * np.pi * p["rate"] * t + phase))


def sweep(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Exponential glide across the band: up when p['direction'] > 0, down otherwise."""
    u = _fraction(t)
    if p["direction"] < 0:
        u = 1.0 - u
    return tone(f_lo * (f_hi / f_lo) ** u)


def arch(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Half-sine FM: arch-shaped (low-high-low) when p['direction'] > 0, U-shaped (high-low-high) otherwise."""
    bump = np.sin(np.pi * _fraction(t))
    track = f_lo + (f_hi - f_lo) * bump if p["direction"] > 0 else f_hi - (f_hi - f_lo) * bump
    return tone(track)


def note_sequence(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Repeated short notes at p['rate'] per second, each p['note'] s long and slurred across the band.

    One function makes both trills (short down-slurred notes, 4-20/s) and chirp series (longer up- or down-chirps,
    1-3/s); p['direction'] picks the slur direction.
    """
    period = 1.0 / p["rate"]
    note = min(p["note"], 0.9 * period)
    within = np.mod(t, period)
    frac = np.clip(within / note, 0.0, 1.0)
    slur = frac if p["direction"] > 0 else 1.0 - frac
    gate = np.where(within < note, 0.5 - 0.5 * np.cos(2.0 * np.pi * frac), 0.0)
    return gate * tone(f_lo + (f_hi - f_lo) * slur)


def pulse_train(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Broadband clicks at p['rate'] per second (slightly irregular), each a p['click'] s decaying noise burst."""
    n, sr = t.size, SAMPLE_RATE
    times = np.arange(0.0, t[-1], 1.0 / p["rate"]) + 0.5 * p["click"]
    times = times + rng.uniform(-0.1, 0.1, times.size) / p["rate"]
    impulses = np.zeros(n)
    idx = np.clip(np.round(times * sr).astype(int), 0, n - 1)
    impulses[idx] = rng.uniform(0.6, 1.0, idx.size)
    k = max(int(p["click"] * sr), 8)
    kernel = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.25 * k))
    return bandpass(sp_signal.fftconvolve(impulses, kernel)[:n], f_lo, f_hi)


def harmonic_stack(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Fundamental plus harmonics (p['harmonics'] partials in all); the fundamental spans [f_lo, f_hi/harmonics].

    p['contour'] 0 = down-slur, 1 = arch; p['rate'] > 0 gates the stack into croaks at that rate.
    """
    k = int(p["harmonics"])
    f0_lo, f0_hi = f_lo, f_hi / k
    u = _fraction(t)
    shape = np.sin(np.pi * u) if p["contour"] > 0 else 1.0 - u
    f0 = f0_lo * (f0_hi / f0_lo) ** shape
    orders = np.arange(1, k + 1)[:, None]
    partials = np.sin(2.0 * np.pi * np.cumsum(f0)[None, :] * orders / SAMPLE_RATE) / orders**0.7
    x = partials.sum(axis=0)
    if p.get("rate", 0.0) > 0:
        x = x * _pulse_gate(t, p["rate"], duty=0.6)
    return x


def am_tone(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Slowly gliding tone whose loudness pulses at p['rate'] Hz (depth p['depth']): a string of beads."""
    u = _fraction(t)
    if p["direction"] < 0:
        u = 1.0 - u
    am = 1.0 - p["depth"] * 0.5 * (1.0 + np.cos(2.0 * np.pi * p["rate"] * t))
    return am * tone(f_lo + (f_hi - f_lo) * u)


def buzz(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Noise band with fast AM at p['rate'] Hz (too fast for 78 ms frames: it reads as a noisy block).

    With p['depth'] = 0 this is the plain noise band used as a confuser.
    """
    am = 1.0 - p["depth"] * 0.5 * (1.0 + np.sin(2.0 * np.pi * p["rate"] * t))
    return am * band_noise(t.size, f_lo, f_hi, rng)


def stepped(t: np.ndarray, f_lo: float, f_hi: float, p: Params, rng: np.random.Generator) -> np.ndarray:
    """p['steps'] steady notes falling from f_hi to f_lo with short gaps ("whee-oo")."""
    steps = int(p["steps"])
    index = np.minimum((_fraction(t) * steps).astype(int), steps - 1)
    within = _fraction(t) * steps - index
    gate = np.clip(np.minimum(within, 0.85 - within) / 0.05, 0.0, 1.0)
    freqs = np.linspace(f_hi, f_lo, steps)[index]
    return gate * tone(freqs)


def _pulse_gate(t: np.ndarray, rate: float, duty: float) -> np.ndarray:
    """Smooth on/off gate at `rate` per second, on for `duty` of each period."""
    frac = np.clip(np.mod(t * rate, 1.0) / duty, 0.0, 1.0)
    return np.where(frac < 1.0, np.sin(np.pi * frac) ** 0.5, 0.0)


#: Family name -> renderer.
FAMILIES: dict[str, Family] = {
    "tone_vibrato": tone_vibrato,
    "sweep": sweep,
    "arch": arch,
    "note_sequence": note_sequence,
    "pulse_train": pulse_train,
    "harmonic_stack": harmonic_stack,
    "am_tone": am_tone,
    "buzz": buzz,
    "stepped": stepped,
}

#: Family name -> visual kind. Families of the same kind look alike on a 78 ms-frame log-mel image (a 40 Hz buzz is
#: a plain noise band there; slow trills, click trains and beaded tones are all rows of blobs), so confusers avoid a
#: kind that a species with a similar band already sings.
FAMILY_KIND: dict[str, str] = {name: name for name in FAMILIES} | {
    "buzz": "noise_band",
    "note_sequence": "pulsed",
    "pulse_train": "pulsed",
    "am_tone": "pulsed",
}

#: Note sequences at or above this rate (notes/s) are not resolved by ~78 ms frames: they look like a noise band.
RESOLVED_RATE_HZ: float = 6.0

#: Parameters of the plain noise band confuser.
NOISE_BAND_PARAMS: dict[str, float] = {"rate": 40.0, "depth": 0.0}


def render_call(family: str, duration_samples: int, f_lo: float, f_hi: float, params: Params,
                rng: np.random.Generator) -> np.ndarray:
    """Render one call at unit RMS with smooth edges; level is set later against the local background."""
    t = np.arange(duration_samples) / SAMPLE_RATE
    x = FAMILIES[family](t, f_lo, f_hi, params, rng) * edge_envelope(duration_samples)
    return unit_rms(x)


# --------------------------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SongType:
    """A variant of a species' call: the real data labels these songtype_id (1 = main song)."""

    songtype_id: int
    duration_scale: float = 1.0
    rate_scale: float = 1.0
    band_shift: float = 1.0
    weight: float = 1.0


@dataclass(frozen=True)
class Species:
    """One synthetic species: a call family placed in a band, with a duration range and song types."""

    species_id: int
    name: str
    family: str
    band: tuple[float, float]
    duration: tuple[float, float]
    params: Mapping[str, float] = field(default_factory=dict)
    songtypes: tuple[SongType, ...] = (SongType(1),)

    @property
    def kind(self) -> str:
        """Visual kind of the call pattern (see FAMILY_KIND); notes too fast for the model's frames read as a band."""
        if self.family == "note_sequence" and self.params["rate"] >= RESOLVED_RATE_HZ:
            return "noise_band"
        return FAMILY_KIND[self.family]

    def songtype(self, songtype_id: int) -> SongType:
        """The song type with this id."""
        return next(s for s in self.songtypes if s.songtype_id == songtype_id)


def _st(*variants: dict[str, float]) -> tuple[SongType, ...]:
    """Main song (id 1, weight 0.7) followed by variants with ids 4 then 2, sharing the remaining weight."""
    extra = [SongType(SONGTYPE_IDS[i + 1], weight=0.3 / len(variants), **v) for i, v in enumerate(variants)]
    return (SongType(1, weight=0.7 if variants else 1.0), *extra)


#: The 24 species. Shared bands on purpose: 1/2 (up vs down sweep), 3/4 (U vs arch), 5/6 (slow vs fast trill),
#: 10/15/22 (up-chirps vs buzz vs down-chirps), 12/13/21 (buzz vs falling whistle vs warble).
SPECIES: tuple[Species, ...] = (
    Species(0, "vibrato whistle", "tone_vibrato", (2000, 2600), (1.0, 2.0), {"rate": 3.0},
            _st({"duration_scale": 1.5, "rate_scale": 0.7})),
    Species(1, "rising whistle", "sweep", (3000, 5000), (0.8, 1.4), {"direction": 1},
            _st({"duration_scale": 0.8, "band_shift": 0.94})),
    Species(2, "falling whistle", "sweep", (3000, 5000), (0.8, 1.4), {"direction": -1}),
    Species(3, "U whistle", "arch", (1200, 2000), (0.8, 1.5), {"direction": -1}, _st({"duration_scale": 1.3})),
    Species(4, "arch whistle", "arch", (1200, 2000), (0.8, 1.5), {"direction": 1}),
    Species(5, "slow trill", "note_sequence", (5500, 6800), (1.5, 3.0),
            {"rate": 4.0, "note": 0.12, "direction": -1}, _st({"rate_scale": 0.8})),
    Species(6, "fast trill", "note_sequence", (5500, 6800), (1.0, 2.5),
            {"rate": 16.0, "note": 0.035, "direction": -1},
            _st({"rate_scale": 1.2}, {"band_shift": 0.95, "duration_scale": 0.7})),
    Species(7, "click train", "pulse_train", (2000, 10000), (1.0, 3.0), {"rate": 5.0, "click": 0.004},
            _st({"rate_scale": 0.7})),
    Species(8, "harmonic hoot", "harmonic_stack", (500, 2600), (0.5, 1.0), {"harmonics": 4, "contour": 1}),
    Species(9, "croak", "harmonic_stack", (250, 960), (1.0, 2.0), {"harmonics": 3, "contour": 0, "rate": 3.0},
            _st({"rate_scale": 1.3}, {"duration_scale": 0.6})),
    Species(10, "up-chirp series", "note_sequence", (7000, 9000), (2.0, 4.0),
            {"rate": 2.0, "note": 0.3, "direction": 1}),
    Species(11, "beaded tone", "am_tone", (9300, 10300), (1.0, 3.0), {"rate": 3.0, "depth": 0.9, "direction": 1},
            _st({"rate_scale": 0.75})),
    Species(12, "high buzz", "buzz", (10500, 12500), (0.5, 2.0), {"rate": 40.0, "depth": 0.8}),
    Species(13, "high falling whistle", "sweep", (11000, 13500), (0.4, 0.8), {"direction": -1},
            _st({"duration_scale": 1.4, "band_shift": 0.96})),
    Species(14, "low warble", "tone_vibrato", (160, 320), (0.6, 1.2), {"rate": 2.5}),
    Species(15, "mid buzz", "buzz", (7000, 9000), (0.8, 2.5), {"rate": 50.0, "depth": 0.6}),
    Species(16, "two-note call", "stepped", (2800, 3600), (0.6, 1.0), {"steps": 2}, _st({"duration_scale": 1.4})),
    Species(17, "slow rise", "sweep", (800, 3000), (2.0, 4.0), {"direction": 1}),
    Species(18, "medium trill", "note_sequence", (3000, 4000), (1.0, 2.5),
            {"rate": 8.0, "note": 0.06, "direction": -1}, _st({"rate_scale": 1.2})),
    Species(19, "slow clicks", "pulse_train", (500, 3000), (1.5, 4.0), {"rate": 2.5, "click": 0.008}),
    Species(20, "slurred stack", "harmonic_stack", (700, 2700), (0.6, 1.2), {"harmonics": 3, "contour": 0},
            _st({"duration_scale": 1.4})),
    Species(21, "high warble", "tone_vibrato", (11500, 13300), (1.2, 2.4), {"rate": 2.5}),
    Species(22, "down-chirp series", "note_sequence", (7000, 9000), (2.0, 4.0),
            {"rate": 1.5, "note": 0.4, "direction": -1}),
    Species(23, "pulsing low tone", "am_tone", (600, 800), (1.5, 3.0), {"rate": 2.0, "depth": 0.95, "direction": -1},
            _st({"rate_scale": 1.5})),
)

assert len(SPECIES) == N_SPECIES and all(s.species_id == i for i, s in enumerate(SPECIES))


def scaled_params(species: Species, songtype: SongType) -> dict[str, float]:
    """Family parameters for one song type: its rate_scale multiplies the species' rate (vibrato, notes, clicks)."""
    params = dict(species.params)
    if "rate" in params:
        params["rate"] = params["rate"] * songtype.rate_scale
    return params


def log_band_overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two bands on a log-frequency axis (how alike they look on a mel image)."""
    inter = math.log(min(a[1], b[1])) - math.log(max(a[0], b[0]))
    union = math.log(max(a[1], b[1])) - math.log(min(a[0], b[0]))
    return max(inter, 0.0) / union


#: Bands whose log-IoU exceeds this count as "the same place" when ruling out confuser patterns.
SIMILAR_BAND_IOU: float = 0.2


def confuser_templates(species_id: int) -> tuple[int | None, ...]:
    """Species whose pattern may be played in this species' band as a false-positive confuser (None = noise band).

    A pattern is allowed only if no species of the same visual kind lives in a similar band: otherwise the confuser
    would *be* that species' call and the labels (test_truth especially) would lie.
    """
    band = SPECIES[species_id].band

    def kind_is_free(kind: str) -> bool:
        return all(s.kind != kind or log_band_overlap(band, s.band) <= SIMILAR_BAND_IOU for s in SPECIES)

    seen: set[str] = set()
    templates: list[int | None] = []
    for s in SPECIES:  # one template per family; noise-like kinds are all represented by the plain noise band
        if s.family not in seen and s.kind != "noise_band" and kind_is_free(s.kind) and pattern_fits(s, band):
            seen.add(s.family)
            templates.append(s.species_id)
    if kind_is_free("noise_band"):
        templates.append(None)
    return tuple(templates)


def pattern_fits(template: Species, band: tuple[float, float]) -> bool:
    """Whether the template's pattern can be drawn inside `band` (a harmonic stack needs room for its partials)."""
    if template.family == "harmonic_stack":
        return band[1] / band[0] >= 1.05 * template.params["harmonics"]
    return True


def frequency_extremes() -> tuple[float, float]:
    """Lowest and highest frequency any call can reach after song-type shifts and jitter (checked in the tests)."""
    lo = min(s.band[0] * min(t.band_shift for t in s.songtypes) for s in SPECIES) * (1 - FREQ_JITTER)
    hi = max(s.band[1] * max(t.band_shift for t in s.songtypes) for s in SPECIES) * (1 + FREQ_JITTER)
    return lo, hi


def duration_extremes() -> tuple[float, float]:
    """Shortest and longest call any species can make (checked in the tests: 0.3-6 s)."""
    lo = min(s.duration[0] * min(t.duration_scale for t in s.songtypes) for s in SPECIES)
    hi = max(s.duration[1] * max(t.duration_scale for t in s.songtypes) for s in SPECIES)
    return lo, hi
