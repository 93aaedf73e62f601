"""The log-mel front end against librosa, the time resize, MinMaxScale, and .keras round trips."""

from __future__ import annotations

from pathlib import Path

import keras
import librosa
import numpy as np
import pytest

from rfcx.model.features import (BandFloor, LogMelSpectrogram, MinMaxScale, NoiseGate, mel_center_frequencies,
                                 mel_filterbank)

SR = 48_000
FMIN, FMAX = 84.0, 15056.0


def chirp_and_noise(seconds: float = 4.0, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A 200 Hz -> 12 kHz chirp in white noise: energy in every band; quiet noise reaches the -80 dB floor."""
    rng = np.random.default_rng(seed)
    chirp = librosa.chirp(fmin=200, fmax=12_000, sr=SR, duration=seconds)
    return (0.5 * chirp + noise * rng.standard_normal(chirp.size)).astype(np.float32)


def tone(frequency: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def librosa_db(y: np.ndarray, n_mels: int) -> np.ndarray:
    """The reference recipe's features: melspectrogram(power=2) then power_to_db(ref=np.max, top_db=80)."""
    power = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=2048, hop_length=512, fmin=FMIN, fmax=FMAX, n_mels=n_mels, power=2.0
    )
    return librosa.power_to_db(power, ref=np.max, top_db=80.0)


def test_filterbank_and_centres_shapes() -> None:
    bank = mel_filterbank(SR, 2048, 64, FMIN, FMAX)
    centres = mel_center_frequencies(64, FMIN, FMAX)
    assert bank.shape == (64, 1025) and bank.dtype == np.float32
    assert centres.shape == (64,) and np.all(np.diff(centres) > 0)
    assert FMIN < centres[0] < centres[-1] < FMAX
    # Each triangle peaks at its centre frequency (to within one FFT bin of 48000/2048 Hz).
    bin_hz = SR / 2048
    assert np.all(np.abs(np.argmax(bank, axis=1) * bin_hz - centres) <= bin_hz)


@pytest.mark.parametrize("n_mels", [64, 128])
def test_matches_librosa_db(n_mels: int) -> None:
    """Native frames: max |dB error| < 0.01 dB on every cell (measured ~2e-4 dB), floor included.

    The framing is librosa 0.11's (center=True, zero padding), so the edge frames match too.
    """
    y = chirp_and_noise(noise=0.0005)
    ours = np.asarray(LogMelSpectrogram(n_mels=n_mels, frames=None)(y[None]))[0, :, :, 0]
    ref = librosa_db(y, n_mels)
    assert ours.shape == ref.shape == (n_mels, 1 + y.size // 512)
    assert np.abs(ours - ref).max() < 0.01
    assert ours.max() == 0.0 and ours.min() >= -80.0
    assert (ref <= -80.0 + 1e-3).any(), "the test signal should reach the floor so clipping is exercised"


def test_power_matches_librosa_power() -> None:
    """Mel power before dB: relative error < 1e-5 of the maximum (float32 STFT vs librosa's complex64)."""
    y = chirp_and_noise(seconds=2.0)
    ours = np.asarray(LogMelSpectrogram(n_mels=64, frames=None).power_mel(y[None]))[0].T
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=512, fmin=FMIN, fmax=FMAX, n_mels=64, power=2.0)
    assert np.abs(ours - ref).max() / ref.max() < 1e-5


def test_output_shapes_and_batch_independence() -> None:
    y = chirp_and_noise(seconds=2.0)
    batch = np.stack([y, 0.01 * y, tone(1000.0)])
    layer = LogMelSpectrogram(n_mels=64, frames=128)
    out = np.asarray(layer(batch))
    assert out.shape == (3, 64, 128, 1)
    assert layer.compute_output_shape((None, y.size)) == (None, 64, 128, 1)
    assert LogMelSpectrogram(frames=None).compute_output_shape((None, 96_000)) == (None, 64, 188, 1)
    # ref = per-example max: a quieter copy of the same clip gives the same image.
    np.testing.assert_allclose(out[0], out[1], atol=1e-3)
    assert np.all(out >= -80.0) and np.all(out <= 0.0)


@pytest.mark.parametrize("frequency", [500.0, 2000.0, 8000.0])
def test_resize_keeps_tone_in_its_mel_row(frequency: float) -> None:
    y = tone(frequency, seconds=10.0)
    native = np.asarray(LogMelSpectrogram(frames=None)(y[None]))[0, :, :, 0]
    resized = np.asarray(LogMelSpectrogram(frames=128)(y[None]))[0, :, :, 0]
    assert native.shape[1] == 938 and resized.shape[1] == 128
    row = int(np.argmax(native.mean(axis=1)))
    assert np.all(np.argmax(resized, axis=0) == row)
    # The mel rows are untouched by a time-only resize: time-averaged profiles agree closely.
    assert np.abs(resized.mean(axis=1) - native.mean(axis=1)).max() < 0.5


def test_min_max_scale() -> None:
    rng = np.random.default_rng(1)
    images = rng.normal(-40.0, 10.0, size=(4, 8, 16, 1)).astype(np.float32)
    images[3] = -80.0  # a constant (silent) example must not divide by zero
    out = np.asarray(MinMaxScale()(images))
    assert np.allclose(out[:3].min(axis=(1, 2, 3)), 0.0) and np.allclose(out[:3].max(axis=(1, 2, 3)), 1.0)
    assert np.all(np.isfinite(out[3])) and np.all(out[3] == 0.0)


def brown_noise_with_tone(frequency: float, seconds: float = 4.0, on: tuple[float, float] = (1.0, 3.0)) -> np.ndarray:
    """Brown (1/f^2) noise, ~60 dB louder at the bottom of the mel range than at the top, plus a tone during `on`."""
    rng = np.random.default_rng(3)
    n = int(SR * seconds)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= freqs[1:]
    spectrum[freqs < 40.0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    noise *= 0.3 / noise.std()
    t = np.arange(n) / SR
    gate = (t >= on[0]) & (t < on[1])
    return (noise + 0.05 * gate * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_band_floor_is_the_per_band_quantile_over_time() -> None:
    images = np.random.default_rng(2).normal(-40.0, 10.0, size=(3, 8, 50, 1)).astype(np.float32)
    for q in (0.2, 0.5):
        expected = images - np.quantile(images, q, axis=2, keepdims=True)
        np.testing.assert_allclose(np.asarray(BandFloor(q)(images)), expected, atol=1e-4)
    with pytest.raises(ValueError, match="quantile"):
        BandFloor(1.0)


def test_band_floor_flattens_a_tilted_background_and_keeps_a_call() -> None:
    """Brown noise tilts the dB image by tens of dB from low to high bands; after the floor is subtracted the
    background is flat within a few dB across bands, and a tone holding its band for half the window (~17 dB above
    its band's noise) still stands more than 12 dB above it (a 0.2 quantile only needs the band quiet for a fifth of
    the time)."""
    db = np.asarray(LogMelSpectrogram(n_mels=64, frames=128)(brown_noise_with_tone(10_000.0)[None]))
    tone_band = int(np.argmin(np.abs(mel_center_frequencies(64, FMIN, FMAX) - 10_000.0)))
    others = [b for b in range(64) if abs(b - tone_band) > 2]
    background = np.median(db[0, others, :, 0], axis=1)
    assert background.max() - background.min() > 30.0
    flat = np.asarray(BandFloor(0.2)(db))
    background_after = np.median(flat[0, others, :, 0], axis=1)
    assert background_after.max() - background_after.min() < 5.0
    during_call = flat[0, tone_band, 40:80, 0]
    assert during_call.mean() > 12.0 + background_after.max()


def test_model_saves_and_reloads_with_safe_mode(tmp_path: Path) -> None:
    inputs = keras.Input((SR,))
    features = MinMaxScale()(BandFloor(0.3)(LogMelSpectrogram(n_mels=32, frames=24)(inputs)))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "frontend.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    batch = np.stack([chirp_and_noise(seconds=1.0, seed=s) for s in range(2)])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(batch)), keras.ops.convert_to_numpy(reloaded(batch)))
    layer = reloaded.get_layer(index=1)
    assert isinstance(layer, LogMelSpectrogram) and layer.get_config()["frames"] == 24
    assert reloaded.get_layer(index=2).get_config()["quantile"] == 0.3


def test_noise_gate_blanks_what_stays_within_the_gate_and_lowers_the_rest_by_it():
    image = np.array([[-6.0, 0.0, 2.9, 3.0, 3.5, 20.0]], dtype="float32")
    gated = keras.ops.convert_to_numpy(NoiseGate(3.0)(image))
    np.testing.assert_allclose(gated, [[0.0, 0.0, 0.0, 0.0, 0.5, 17.0]])
    with pytest.raises(ValueError, match="gate_db"):
        NoiseGate(-1.0)
