"""Batched augmentations: the numbers each transform must produce, gating, determinism, the reference
numpy recipe, building from config, and running inside model.fit / a saved model.

Tolerances used below (and why):
* SNR: every example's measured 10*log10(P_signal / P_added) lies in [min_snr, max_snr] +- 0.01 dB; the
  noise is normalised exactly, so only float32 rounding is left.
* Noise colour: log-log Welch PSD slope over 50 Hz - 5 kHz is -1 +- 0.15 (pink) and 0 +- 0.15 (white).
* Probabilities: observed fractions within 4 binomial standard deviations of the expected value.
* librosa pitch shift: FFT peak of a shifted 1 kHz tone within 1 % of 1000 * 2**(n/12).
* Mel pitch shift (128 mels): the tone's peak row is within one band spacing of 1000 * 2**(n/12); against
  the dB mel image of librosa.effects.pitch_shift the mean |dB difference| over valid non-floor cells is
  < 5 dB (measured 2.7-4.4 dB; merely redrawing the white noise in the test clip gives 2.9 dB), and the
  per-frame loudest row agrees within +-1 row on >= 90 % of frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import colorednoise
import jsonschema
import keras
import librosa
import numpy as np
import pytest
import scipy.signal
from keras import ops

from rfcx.model.augment import (
    AUGMENT_SCHEMA,
    SpectralNoiseSNR,
    SpectralTimeShift,
    SpectralVolumeControl,
    Compose,
    GaussianNoiseSNR,
    MelPitchShift,
    OneOf,
    PinkNoiseSNR,
    RandomTransform,
    SpecAugment,
    TimeShift,
    VolumeControl,
    build_augmentations,
    reference,
)
from rfcx.model.features import LogMelSpectrogram, MinMaxScale, mel_center_frequencies

SR = 48_000
CENTRES_64 = mel_center_frequencies(64, 84.0, 15056.0)
CENTRES_128 = mel_center_frequencies(128, 84.0, 15056.0)
FEATURES = {"sample_rate": SR, "n_fft": 2048, "hop_length": 512, "fmin": 84.0, "fmax": 15056.0, "n_mels": 64}

BRIEF_SPEC: list[dict[str, Any]] = [
    {
        "type": "OneOf",
        "p": 0.5,
        "transforms": [
            {"type": "GaussianNoiseSNR", "p": 1.0, "min_snr": 5, "max_snr": 20},
            {"type": "PinkNoiseSNR", "p": 1.0, "min_snr": 5, "max_snr": 20},
        ],
    },
    {"type": "PitchShift", "p": 0.3, "max_steps": 2, "method": "mel"},
    {"type": "TimeShift", "p": 0.5, "max_shift_seconds": 1.0, "padding": "replace"},
    {"type": "VolumeControl", "p": 0.5, "db_limit": 10, "mode": "uniform"},
]


def in_domain(spec: list[dict[str, Any]], domain: str) -> list[dict[str, Any]]:
    """``spec`` with every transform that has a ``domain`` (noises, TimeShift, VolumeControl) set to ``domain``."""
    def one(entry: dict[str, Any]) -> dict[str, Any]:
        entry = dict(entry)
        if "transforms" in entry:
            entry["transforms"] = [one(child) for child in entry["transforms"]]
        elif entry["type"] in ("GaussianNoiseSNR", "PinkNoiseSNR", "TimeShift", "VolumeControl"):
            entry["domain"] = domain
        return entry

    return [one(entry) for entry in spec]


class AddConstant(RandomTransform):
    """Test probe: adds ``value``, so which transform ran (and how often) is readable from the output."""

    def __init__(self, value: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def transform(self, inputs: Any) -> Any:
        return inputs + self.value


class Scale(RandomTransform):
    """Test probe: multiplies by ``factor`` (with AddConstant, makes the order of a Compose visible)."""

    def __init__(self, factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def transform(self, inputs: Any) -> Any:
        return inputs * self.factor


def train(layer: keras.layers.Layer, x: Any) -> np.ndarray:
    return np.asarray(layer(ops.convert_to_tensor(x), training=True))


def signals(batch: int, samples: int, seed: int = 0) -> np.ndarray:
    """Sines of random frequency and amplitude (0.01-1), so signal levels differ per example."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SR
    freq = rng.uniform(200, 5000, size=(batch, 1))
    amp = 10 ** rng.uniform(-2, 0, size=(batch, 1))
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    added = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2, axis=-1) / np.mean(added**2, axis=-1))


def psd_slope(noise: np.ndarray) -> float:
    """Least-squares slope of log10 PSD vs log10 frequency over 50 Hz - 5 kHz (Welch, averaged over rows)."""
    freqs, psd = scipy.signal.welch(noise, fs=SR, nperseg=8192, axis=-1)
    psd = np.atleast_2d(psd).mean(axis=0)
    band = (freqs >= 50) & (freqs <= 5000)
    return float(np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0])


def changed_rows(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=tuple(range(1, before.ndim)))


def assert_fraction(observed: float, p: float, n: int) -> None:
    assert abs(observed - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-9, (observed, p)


# ------------------------------------------------------------------------------------------------
# Noise
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GaussianNoiseSNR, PinkNoiseSNR])
def test_noise_snr_of_every_example_in_range(cls: type) -> None:
    x = signals(64, 4096)
    out = train(cls(min_snr=5.0, max_snr=20.0, always_apply=True, seed=1), x)
    snr = snr_db(x, out)
    assert np.all(snr >= 5.0 - 0.01) and np.all(snr <= 20.0 + 0.01)
    assert snr.min() < 8.0 and snr.max() > 17.0, "SNRs should spread over the range, one draw per example"


@pytest.mark.parametrize("transform", [reference.GaussianNoiseSNR, reference.PinkNoiseSNR])
def test_reference_noise_snr_in_range(transform: type) -> None:
    x = signals(16, 4096)
    rng = np.random.default_rng(3)
    out = np.stack([transform(always_apply=True, min_snr=5.0, max_snr=20.0)(row, rng) for row in x])
    snr = snr_db(x, out)
    assert np.all(snr >= 5.0 - 0.01) and np.all(snr <= 20.0 + 0.01)


def test_peak_level_option_matches_notebook_definition() -> None:
    x = signals(32, 4096)
    out = train(GaussianNoiseSNR(min_snr=10.0, max_snr=10.0, level="peak", always_apply=True, seed=2), x)
    added = out - x
    peak_snr = 20 * np.log10(np.abs(x).max(axis=1) / np.abs(added).max(axis=1))
    np.testing.assert_allclose(peak_snr, 10.0, atol=0.01)


@pytest.mark.parametrize(
    ("noise_source", "expected"),
    [
        ("pink_layer", -1.0),
        ("pink_reference", -1.0),
        ("gaussian_layer", 0.0),
    ],
)
def test_noise_colour(noise_source: str, expected: float) -> None:
    samples = 2**16
    x = signals(8, samples, seed=4) * 1e-3  # a faint carrier: the added part is the noise
    if noise_source == "pink_reference":
        noise = np.stack([colorednoise.powerlaw_psd_gaussian(1, samples, random_state=i) for i in range(8)])
    else:
        cls = PinkNoiseSNR if noise_source == "pink_layer" else GaussianNoiseSNR
        noise = train(cls(min_snr=0.0, max_snr=0.0, always_apply=True, seed=5), x) - x
    assert abs(psd_slope(noise) - expected) <= 0.15


# ------------------------------------------------------------------------------------------------
# Pitch shift
# ------------------------------------------------------------------------------------------------


def sine(frequency: float, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / SR)[np.argmax(spectrum)])


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_librosa_pitch_shift_moves_tone(seed: int) -> None:
    transform = reference.PitchShift(always_apply=True, max_steps=5, sr=SR)
    n_steps = int(np.random.default_rng(seed).integers(-5, 5, endpoint=True))  # the draw apply() makes
    out = transform(sine(1000.0, 1.0), np.random.default_rng(seed))
    expected = 1000.0 * 2 ** (n_steps / 12)
    assert abs(peak_frequency(out) - expected) <= 0.01 * expected


@pytest.fixture(scope="module")
def tone_image() -> np.ndarray:
    return np.asarray(LogMelSpectrogram(n_mels=128, frames=None)(sine(1000.0, 1.0)[None]))


def test_mel_pitch_shift_moves_tone_peak(tone_image: np.ndarray) -> None:
    layer = MelPitchShift(CENTRES_128, max_steps=5)
    steps = np.arange(-5, 6, dtype=np.int32)
    shifted = np.asarray(layer.shift_by(np.repeat(tone_image, steps.size, axis=0), steps))
    peak_rows = np.argmax(shifted[:, :, :, 0].mean(axis=2), axis=1)
    spacing = np.diff(librosa.hz_to_mel(CENTRES_128)).mean()
    error = librosa.hz_to_mel(CENTRES_128[peak_rows]) - librosa.hz_to_mel(1000.0 * 2 ** (steps / 12))
    assert np.all(np.abs(error) <= spacing)
    assert peak_rows[0] < peak_rows[5] < peak_rows[-1]


def test_mel_pitch_shift_fills_uncovered_rows_with_floor(tone_image: np.ndarray) -> None:
    layer = MelPitchShift(CENTRES_128, max_steps=5)
    up, down = np.asarray(layer.shift_by(np.repeat(tone_image, 2, axis=0), np.array([5, -5], dtype=np.int32)))
    floor = tone_image.min()
    assert np.all(up[0] == floor), "shifting up: the lowest row has no source below the lowest band"
    assert np.all(down[-1] == floor), "shifting down: the highest row has no source above the highest band"
    zero = np.asarray(layer.shift_by(tone_image, np.array([0], dtype=np.int32)))
    np.testing.assert_allclose(zero, tone_image, atol=1e-4)


@pytest.mark.parametrize("n_steps", [-2, 2, 5])
def test_mel_pitch_shift_matches_librosa_image(n_steps: int) -> None:
    seconds = 3.0
    t = np.arange(int(SR * seconds)) / SR
    rng = np.random.default_rng(0)
    y = (
        0.5 * librosa.chirp(fmin=300, fmax=8000, sr=SR, duration=seconds)
        + 0.3 * np.sin(2 * np.pi * 2000 * t) * (t > 1.5)
        + 0.02 * rng.standard_normal(t.size)
    ).astype(np.float32)
    front_end = LogMelSpectrogram(n_mels=128, frames=None)
    layer = MelPitchShift(CENTRES_128, max_steps=5)
    ours = np.asarray(layer.shift_by(front_end(y[None]), np.array([n_steps], dtype=np.int32)))[0, :, :, 0]
    theirs = np.asarray(front_end(librosa.effects.pitch_shift(y, sr=SR, n_steps=n_steps)[None]))[0, :, :, 0]
    valid = layer._valid[n_steps + 5] > 0.5
    cells = valid[:, None] & (ours > -80.0) & (theirs > -80.0)
    assert np.abs(ours - theirs)[cells].mean() < 5.0
    chirp_frames = slice(10, 130)  # the chirp alone, well inside the band, before the 2 kHz tone starts
    rows_ours = np.argmax(ours[:, chirp_frames], axis=0)
    rows_theirs = np.argmax(theirs[:, chirp_frames], axis=0)
    assert np.mean(np.abs(rows_ours - rows_theirs) <= 1) >= 0.9


# ------------------------------------------------------------------------------------------------
# Time shift
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["replace", "zero"])
def test_time_shift_exact_positions(padding: str) -> None:
    n = 10
    x = np.tile(np.arange(1, n + 1, dtype=np.float32), (3, 1))
    shifts = np.array([[3], [-3], [0]], dtype=np.int32)
    out = np.asarray(TimeShift(padding=padding).shift(ops.convert_to_tensor(x), ops.convert_to_tensor(shifts)))
    if padding == "replace":
        expected = [[8, 9, 10, 1, 2, 3, 4, 5, 6, 7], [4, 5, 6, 7, 8, 9, 10, 1, 2, 3], list(range(1, 11))]
    else:
        expected = [[0, 0, 0, 1, 2, 3, 4, 5, 6, 7], [4, 5, 6, 7, 8, 9, 10, 0, 0, 0], list(range(1, 11))]
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    for row, shift in zip(out, shifts[:, 0]):
        np.testing.assert_array_equal(row, reference.time_shift(x[0].copy(), int(shift), padding))


def test_time_shift_draws_inclusive_range_and_rolls() -> None:
    n, max_shift = 40, 10
    x = np.tile(np.arange(n, dtype=np.float32), (400, 1))
    layer = TimeShift(max_shift_seconds=0.5, sample_rate=2 * max_shift, always_apply=True, seed=3)
    out = train(layer, x)
    shifts = (-out[:, 0].astype(int) + max_shift) % n - max_shift  # out[:, 0] = x[-shift mod n]
    for row, shift in zip(out, shifts):
        np.testing.assert_array_equal(row, np.roll(x[0], shift))
    assert shifts.min() == -max_shift and shifts.max() == max_shift


def test_reference_time_shift_matches_layer() -> None:
    n, max_shift = 50, 12
    x = np.arange(n, dtype=np.float32)
    for seed in range(5):
        shift = int(np.random.default_rng(seed).integers(-max_shift, max_shift, endpoint=True))
        ref = reference.TimeShift(always_apply=True, max_shift_seconds=1.0, sr=max_shift, padding="zero")(x.copy(), np.random.default_rng(seed))
        ours = np.asarray(TimeShift(padding="zero").shift(ops.convert_to_tensor(x[None]), ops.convert_to_tensor([[shift]])))[0]
        np.testing.assert_array_equal(ours, ref)


# ------------------------------------------------------------------------------------------------
# Volume
# ------------------------------------------------------------------------------------------------


def gain_curve(mode: str, db: float, n: int = 1001) -> np.ndarray:
    x = ops.zeros((1, n))
    return np.broadcast_to(np.asarray(VolumeControl(mode=mode).gain(x, ops.convert_to_tensor([[db]]))), (1, n))[0]


def test_volume_curves_endpoints_and_midpoints() -> None:
    db, n = 6.0, 1001
    up, down = 10 ** (db / 20), 10 ** (-db / 20)
    np.testing.assert_allclose(gain_curve("uniform", db, n), up, rtol=1e-5)
    fade = gain_curve("fade", db, n)
    np.testing.assert_allclose([fade[0], fade[n // 2], fade[-1]], [up, 10 ** (db / 40), 1.0], rtol=1e-5)
    cosine = gain_curve("cosine", db, 1000)
    np.testing.assert_allclose([cosine[0], cosine[500]], [up, down], rtol=1e-5)
    assert abs(cosine[-1] - up) < 1e-3 * up  # one sample before the period closes
    sine = gain_curve("sine", db, 1000)
    np.testing.assert_allclose([sine[0], sine[250], sine[500], sine[750]], [1.0, up, 1.0, down], rtol=1e-4)
    assert int(np.argmax(sine)) == 250


@pytest.mark.parametrize("mode", ["uniform", "fade", "cosine", "sine"])
def test_volume_layer_gain_within_limits_and_reference_agrees(mode: str) -> None:
    x = np.ones((64, 512), dtype=np.float32)
    ratio = train(VolumeControl(db_limit=10.0, mode=mode, always_apply=True, seed=4), x)
    assert ratio.min() >= 10 ** (-10 / 20) - 1e-5 and ratio.max() <= 10 ** (10 / 20) + 1e-5
    for seed in range(3):
        db = np.random.default_rng(seed).uniform(-10.0, 10.0)  # the draw the reference makes
        ref = reference.VolumeControl(always_apply=True, db_limit=10.0, mode=mode)(x[0], np.random.default_rng(seed))
        np.testing.assert_allclose(gain_curve(mode, db, 512), ref, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# SpecAugment
# ------------------------------------------------------------------------------------------------


def test_spec_augment_masks_to_floor_within_sizes() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(-70, 0, size=(64, 32, 40, 1)).astype(np.float32)
    images[:, 0, 0, 0] = -80.0
    out = train(SpecAugment(time_masks=1, time_mask_frames=5, freq_masks=1, freq_mask_bins=3, always_apply=True, seed=1), images)
    masked = out != images
    assert np.all(out[masked] == -80.0)
    full_rows = masked[:, :, :, 0].all(axis=2).sum(axis=1)
    full_cols = masked[:, :, :, 0].all(axis=1).sum(axis=1)
    assert full_rows.max() <= 3 and full_cols.max() <= 5 and full_rows.max() > 0 and full_cols.max() > 0


# ------------------------------------------------------------------------------------------------
# Gating, Compose, OneOf
# ------------------------------------------------------------------------------------------------


def test_p_and_always_apply() -> None:
    n = 4000
    x = np.zeros((n, 8), dtype=np.float32)
    assert_fraction(changed_rows(x, train(AddConstant(1.0, p=0.3, seed=1), x)).mean(), 0.3, n)
    assert not changed_rows(x, train(AddConstant(1.0, p=0.0, seed=1), x)).any()
    assert changed_rows(x, train(AddConstant(1.0, p=0.0, always_apply=True, seed=1), x)).all()
    gaussian = GaussianNoiseSNR(p=0.5, seed=2)
    noisy_x = np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
    assert_fraction(changed_rows(noisy_x, train(gaussian, noisy_x)).mean(), 0.5, n)


def test_compose_order_and_gate() -> None:
    n = 4000
    x = np.ones((n, 4), dtype=np.float32)
    ordered = train(Compose([AddConstant(1.0, p=1.0), Scale(2.0, p=1.0)]), x)
    assert np.all(ordered == 4.0)
    gated = train(Compose([AddConstant(1.0, p=1.0)], p=0.25, seed=3), x)
    assert_fraction(changed_rows(x, gated).mean(), 0.25, n)


def test_one_of_picks_uniformly_and_respects_gates() -> None:
    n = 3000
    x = np.zeros((n, 4), dtype=np.float32)
    picked = train(OneOf([AddConstant(float(v), p=1.0) for v in (1, 2, 3)], seed=4), x)[:, 0]
    for value in (1.0, 2.0, 3.0):
        assert_fraction(np.mean(picked == value), 1 / 3, n)
    half = train(OneOf([AddConstant(1.0, p=1.0), AddConstant(2.0, p=1.0)], p=0.5, seed=5), x)[:, 0]
    assert_fraction(np.mean(half == 0.0), 0.5, n)
    inner = train(OneOf([AddConstant(1.0, p=0.5), AddConstant(2.0, p=1.0)], seed=6), x)[:, 0]
    assert_fraction(np.mean(inner == 0.0), 0.25, n)


def test_reference_gating_fractions() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = np.ones(4)
    add = reference.VolumeControl(p=0.3, db_limit=10.0)
    assert_fraction(np.mean([not np.array_equal(add(y, rng), y) for _ in range(n)]), 0.3, n)
    compose = reference.Compose([reference.VolumeControl(always_apply=True)], p=0.25)
    assert_fraction(np.mean([not np.array_equal(compose(y, rng), y) for _ in range(n)]), 0.25, n)


# ------------------------------------------------------------------------------------------------
# Training vs inference, determinism
# ------------------------------------------------------------------------------------------------


def all_layers(seed: int) -> list[tuple[keras.layers.Layer, np.ndarray]]:
    wave = signals(4, 2048)
    image = np.random.default_rng(1).uniform(-80, 0, size=(4, 64, 16, 1)).astype(np.float32)
    return [
        (GaussianNoiseSNR(always_apply=True, seed=seed), wave),
        (PinkNoiseSNR(always_apply=True, seed=seed), wave),
        (TimeShift(max_shift_seconds=0.01, always_apply=True, seed=seed), wave),
        (VolumeControl(mode="fade", always_apply=True, seed=seed), wave),
        (MelPitchShift(CENTRES_64, max_steps=5, always_apply=True, seed=seed), image),
        (SpecAugment(always_apply=True, seed=seed), image),
        (Compose([VolumeControl(always_apply=True, seed=seed)], seed=seed + 1), wave),
        (OneOf([GaussianNoiseSNR(p=1.0, seed=seed), PinkNoiseSNR(p=1.0, seed=seed + 1)], seed=seed + 2), wave),
    ]


def test_identity_unless_training() -> None:
    for layer, x in all_layers(seed=11):
        assert np.array_equal(np.asarray(layer(x)), x), layer.name
        assert np.array_equal(np.asarray(layer(x, training=False)), x), layer.name
        assert not np.array_equal(train(layer, x), x), layer.name


def test_same_seed_same_draws() -> None:
    first, second, other = all_layers(seed=21), all_layers(seed=21), all_layers(seed=22)
    for (a, x), (b, _), (c, _) in zip(first, second, other):
        out_a, out_b = train(a, x), train(b, x)
        np.testing.assert_array_equal(out_a, out_b, err_msg=a.name)
        assert not np.array_equal(out_a, train(c, x)), a.name
        assert not np.array_equal(out_a, train(a, x)), f"{a.name}: a second call must draw anew"


# ------------------------------------------------------------------------------------------------
# Building from config
# ------------------------------------------------------------------------------------------------


def build(spec: list[dict[str, Any]], seed: int = 0) -> Any:
    return build_augmentations(spec, features=FEATURES, seed=seed)


def test_build_brief_spec_splits_stages() -> None:
    """By default the noises, shift and volume run on the mel power; domain: waveform puts them on the audio."""
    stages = build(BRIEF_SPEC)
    assert stages.waveform is None and isinstance(stages.power, Compose) and stages.host is None
    assert [type(t) for t in stages.power.transforms] == [OneOf, SpectralTimeShift, SpectralVolumeControl]
    noises = stages.power.transforms[0].transforms
    assert [(type(t), t.colour) for t in noises] == [(SpectralNoiseSNR, "white"), (SpectralNoiseSNR, "pink")]
    assert stages.power.transforms[1].max_shift == round(SR / 512)  # 1 s in hops
    stages = build(in_domain(BRIEF_SPEC, "waveform"))
    assert stages.power is None
    assert isinstance(stages.waveform, Compose) and stages.host is None
    assert [type(t) for t in stages.waveform.transforms] == [OneOf, TimeShift, VolumeControl]
    assert isinstance(stages.spectrogram, MelPitchShift)
    assert stages.spectrogram.p == 0.3 and stages.spectrogram.max_steps == 2
    time_shift = stages.waveform.transforms[1]
    assert time_shift.max_shift == SR and time_shift.p == 0.5
    assert build([]).waveform is None and build(None).spectrogram is None


def test_build_librosa_pitch_shift_goes_to_host() -> None:
    stages = build([{"type": "PitchShift", "always_apply": True, "max_steps": 2, "method": "librosa"}])
    assert stages.waveform is None and stages.spectrogram is None
    y = sine(1000.0, 0.5)
    out = stages.host(y, np.random.default_rng(0))
    assert out.shape == y.shape and out.dtype == y.dtype and not np.array_equal(out, y)


def test_build_ungated_compose_may_span_stages() -> None:
    stages = build([{"type": "Compose", "transforms": [{"type": "TimeShift", "domain": "waveform"},
                                                         {"type": "VolumeControl"}, {"type": "SpecAugment"}]}])
    assert isinstance(stages.waveform, TimeShift) and isinstance(stages.power, SpectralVolumeControl)
    assert isinstance(stages.spectrogram, SpecAugment)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([{"type": "TimeShift"}, {"type": "Bogus"}], r"augment\[1\] \(Bogus\): unknown augmentation type"),
        ([{"type": "TimeShift", "max_shift": 1}], r"augment\[0\] \(TimeShift\): unknown key\(s\) \['max_shift'\]"),
        ([{"type": "TimeShift", "padding": "wrap"}], r"augment\[0\] \(TimeShift\): .*padding"),
        ([{"type": "VolumeControl", "p": 1.5}], r"augment\[0\] \(VolumeControl\): p must be"),
        ([{"max_steps": 2}], r"augment\[0\]: expected a mapping with a 'type'"),
        (
            [{"type": "OneOf", "transforms": [{"type": "GaussianNoiseSNR"}, {"type": "PitchShift"}]}],
            r"augment\[0\] \(OneOf\): OneOf mixes power and spectrogram",
        ),
        (
            [{"type": "OneOf", "transforms": [{"type": "OneOf", "transforms": [{"type": "PitchShift", "method": "librosa"}, {"type": "TimeShift"}]}]}],
            r"augment\[0\] \(OneOf\)\.transforms\[0\] \(OneOf\): OneOf mixes host and power",
        ),
        (
            [{"type": "Compose", "p": 0.5, "transforms": [{"type": "TimeShift", "domain": "waveform"}, {"type": "VolumeControl"}]}],
            r"augment\[0\] \(Compose\): Compose mixes waveform and power",
        ),
        ([{"type": "GaussianNoiseSNR", "level": "peak"}], r"augment\[0\] \(GaussianNoiseSNR\): .*level rms.*domain: waveform"),
        ([{"type": "VolumeControl", "domain": "time"}], r"augment\[0\] \(VolumeControl\): domain must be one of"),
    ],
)
def test_build_rejects_bad_entries(spec: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(spec)


def test_schema_describes_and_validates_the_list() -> None:
    jsonschema.Draft7Validator.check_schema(AUGMENT_SCHEMA)
    jsonschema.validate(BRIEF_SPEC, AUGMENT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"type": "TimeShift", "max_shift": 1}], AUGMENT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"type": "PitchShift", "method": "rubberband"}], AUGMENT_SCHEMA)
    for branch in AUGMENT_SCHEMA["items"]["oneOf"]:
        for name, prop in branch["properties"].items():
            assert "description" in prop and "default" in prop, (branch["properties"]["type"], name)


# ------------------------------------------------------------------------------------------------
# Inside a model
# ------------------------------------------------------------------------------------------------


def augmented_model(samples: int, seed: int = 0, domain: str = "waveform") -> keras.Model:
    spec = [*in_domain(BRIEF_SPEC, domain), {"type": "SpecAugment", "p": 0.5, "time_mask_frames": 2, "freq_mask_bins": 4}]
    stages = build_augmentations(spec, features={**FEATURES, "n_mels": 32}, seed=seed)
    inputs = keras.Input((samples,))
    audio = stages.waveform(inputs) if stages.waveform is not None else inputs
    image = LogMelSpectrogram(n_mels=32, frames=8, augment=stages.power)(audio)
    features = MinMaxScale()(stages.spectrogram(image))
    outputs = keras.layers.Dense(24, activation="sigmoid")(keras.layers.Flatten()(features))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("domain", ["waveform", "spectrogram"])
@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_fit_one_step_and_inference_is_deterministic(tmp_path: Path, jit_compile: bool, domain: str) -> None:
    """One compiled training step (XLA too: jit_compile="auto" picks it on GPU machines), then inference, then a
    save and a safe reload that brings the nested augmentations back (inside the front end for the power stage)."""
    samples = 4800
    x = signals(8, samples)
    y = (np.random.default_rng(0).uniform(size=(8, 24)) > 0.8).astype(np.float32)
    model = augmented_model(samples, domain=domain)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    path = tmp_path / "augmented.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), first)
    nested = reloaded.layers[1] if domain == "waveform" else reloaded.layers[1].augment
    assert isinstance(nested, Compose) and isinstance(nested.transforms[0], OneOf)
    assert nested.transforms[0].transforms[1].get_config()["min_snr"] == 5.0


@pytest.fixture
def mixed_bfloat16() -> Any:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_float32_under_mixed_precision(mixed_bfloat16: None) -> None:
    """The GPU config trains in mixed_bfloat16: augmentations and front end must still compute in float32."""
    x = signals(2, 4800)
    model = augmented_model(4800, domain="waveform")
    for layer in model.layers[1:4]:
        assert layer.compute_dtype == "float32", layer.name
    image = np.asarray(model.layers[2](model.layers[1](x, training=True)))
    assert image.dtype == np.float32
    keras.mixed_precision.set_global_policy("float32")
    reference_image = np.asarray(LogMelSpectrogram(n_mels=32, frames=8)(x))
    np.testing.assert_allclose(np.asarray(model.layers[2](x)), reference_image, atol=1e-4)
