"""The mel-power augmentations (the fast default, ``domain: spectrogram``) against their waveform counterparts, on the
mel image the model sees.

Tolerances (measured values in brackets, 2 s clips at 48 kHz, 64 bands):
* Noise: per band, the mean dB over frames and clips differs from the waveform noise's by < 1 dB [0.33 white, 0.29
  pink] and the frame-to-frame spread (std of dB) by < 0.5 dB [2.10 vs 1.97]; the SNR recovered from the added power
  lies in [min_snr, max_snr] +- 0.25 dB.
* Time shift by whole hops: >= 95 % of cells within 0.01 dB of the shifted waveform's spectrogram [96.2 % replace,
  98.7 % zero]; the rest are the frames at the seam and the edges.
* Volume: on cells within 60 dB of the clip's maximum, uniform gain within 0.001 dB, fade/cosine/sine within 1 dB
  [0.09, 0.22, 0.57] (the curve changes within a 43 ms frame).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from keras import ops

from rfcx.model.augment import (
    GaussianNoiseSNR,
    OneOf,
    PinkNoiseSNR,
    SpectralNoiseSNR,
    SpectralTimeShift,
    SpectralVolumeControl,
    TimeShift,
    VolumeControl,
    noise_mel_statistics,
)
from rfcx.model.features import LogMelSpectrogram, mel_center_frequencies, mel_filterbank

SR, N_FFT, HOP, FMIN, FMAX, N_MELS = 48_000, 2048, 512, 84.0, 15056.0, 64
FRONT_END = LogMelSpectrogram(n_mels=N_MELS, frames=None)


def calls(seconds: float = 2.0) -> np.ndarray:
    """Four amplitude-modulated tones (500 Hz - 9 kHz), a stand-in for calls at different pitches."""
    t = np.arange(int(seconds * SR)) / SR
    tones = [0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) for f in (500, 2000, 6000, 9000)]
    return np.stack(tones).astype(np.float32)


def mel_power(x: np.ndarray) -> np.ndarray:
    return np.asarray(FRONT_END.power_mel(ops.convert_to_tensor(x)))


def db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(np.asarray(power), 1e-10))


def mean_square(x: np.ndarray) -> np.ndarray:
    return np.mean(np.square(x), axis=-1, keepdims=True).astype(np.float32)


def test_white_noise_statistics_match_theory() -> None:
    """White noise of unit variance has E|STFT_k|^2 = sum(w^2) in every bin, so band m gets sum(w^2) * sum_k W_mk."""
    mean, dof = noise_mel_statistics("white", SR, N_FFT, HOP, FMIN, FMAX, N_MELS)
    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    expected = np.sum(window**2) * mel_filterbank(SR, N_FFT, N_MELS, FMIN, FMAX).sum(axis=1)
    np.testing.assert_allclose(mean, expected, rtol=0.05)
    assert np.all(dof > 0.5) and dof[-1] > dof[0]  # wide high bands average more bins than narrow low ones
    pink_mean, _ = noise_mel_statistics("pink", SR, N_FFT, HOP, FMIN, FMAX, N_MELS)
    slope = np.polyfit(np.log(mel_center_frequencies(N_MELS, FMIN, FMAX)), np.log(pink_mean / mean), 1)[0]
    assert abs(slope + 1.0) < 0.15  # pink: power density ~ 1/f relative to white


@pytest.mark.parametrize(("colour", "waveform_layer"), [("white", GaussianNoiseSNR), ("pink", PinkNoiseSNR)])
def test_spectral_noise_looks_like_waveform_noise_on_the_mel_image(colour: str, waveform_layer: type) -> None:
    x = np.repeat(calls(), 8, axis=0)
    on_audio = waveform_layer(min_snr=10.0, max_snr=10.0, p=1.0, seed=1)
    on_power = SpectralNoiseSNR(colour=colour, min_snr=10.0, max_snr=10.0, p=1.0, seed=1)
    reference = db(mel_power(np.asarray(on_audio(x, training=True))))[:, 4:-4]
    ours = db(on_power(ops.convert_to_tensor(mel_power(x)), training=True, signal_power=mean_square(x)))[:, 4:-4]
    assert np.abs(reference.mean(axis=(0, 1)) - ours.mean(axis=(0, 1))).max() < 1.0
    assert abs(reference.std(axis=1).mean() - ours.std(axis=1).mean()) < 0.5


def test_spectral_noise_snr_is_drawn_in_range() -> None:
    """On white signals, the noise variance recovered from the added mel power gives an SNR inside the range."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((32, 2 * SR)) * 10 ** rng.uniform(-2, 0, size=(32, 1))).astype(np.float32)
    layer = SpectralNoiseSNR(colour="white", min_snr=5.0, max_snr=20.0, p=1.0, seed=3)
    clean = mel_power(x)
    noisy = np.asarray(layer(ops.convert_to_tensor(clean), training=True, signal_power=mean_square(x)))
    unit = noise_mel_statistics("white", SR, N_FFT, HOP, FMIN, FMAX, N_MELS)[0]
    variance = ((noisy - clean) / unit).mean(axis=(1, 2))
    snr = 10 * np.log10(mean_square(x)[:, 0] / variance)
    assert np.all(snr > 5.0 - 0.25) and np.all(snr < 20.0 + 0.25)
    assert snr.max() - snr.min() > 10.0  # drawn per clip, across the range


def test_one_of_noise_colours_shares_one_draw_and_keeps_each_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    """OneOf(white, pink) on mel power takes SpectralNoiseSNR.one_of (one normal per cell for both colours); each
    example still gets its own colour's band powers and spread, about half get each, and a child's own p gates it."""
    shared = []
    monkeypatch.setattr(SpectralNoiseSNR, "one_of", staticmethod(
        lambda *args, _real=SpectralNoiseSNR.one_of, **kwargs: shared.append(1) or _real(*args, **kwargs)))
    frames, batch = 400, 64
    silent = ops.zeros((batch, frames, N_MELS))  # the output is then the noise alone: 0 dB SNR on unit signal power
    unit_power = np.ones((batch, 1), dtype=np.float32)
    colours = ("white", "pink")
    one_of = OneOf([SpectralNoiseSNR(colour=c, min_snr=0.0, max_snr=0.0, p=1.0, seed=i) for i, c in enumerate(colours)],
                   p=1.0, seed=7)
    noise = np.asarray(one_of(silent, training=True, signal_power=unit_power))
    assert shared  # the shared path ran
    stats = {c: noise_mel_statistics(c, SR, N_FFT, HOP, FMIN, FMAX, N_MELS) for c in colours}
    # which colour each example got: the one whose band powers its mean over frames is closest to (log scale)
    distance = np.stack([np.abs(np.log(noise.mean(axis=1)) - np.log(stats[c][0])).mean(axis=1) for c in colours])
    picked = distance.argmin(axis=0)
    assert np.all(distance.min(axis=0) < 0.1) and np.all(distance.max(axis=0) > 0.5)  # close to one, far from the other
    assert 16 <= picked.sum() <= 48  # about half pink
    for index, colour in enumerate(colours):
        mean, dof = stats[colour]
        spread = np.log(noise[picked == index]).std(axis=1).mean(axis=0)  # per band, over frames
        np.testing.assert_allclose(spread, np.sqrt(np.log1p(1.0 / dof)), rtol=0.1)  # the lognormal's sigma
    gated = OneOf([SpectralNoiseSNR(colour="white", p=1.0, seed=1), SpectralNoiseSNR(colour="pink", p=0.0, seed=2)],
                  p=1.0, seed=8)
    untouched = np.all(np.asarray(gated(silent, training=True, signal_power=unit_power)) == 0.0, axis=(1, 2))
    assert 16 <= untouched.sum() <= 48  # the pink picks, whose own p is 0; the white ones all got noise


@pytest.mark.parametrize("padding", ["replace", "zero"])
def test_spectral_time_shift_equals_shifting_the_waveform(padding: str) -> None:
    x = calls()
    hops = np.array([[7], [-5], [0], [30]], dtype="int32")
    reference = db(mel_power(np.asarray(TimeShift(padding=padding).shift(ops.convert_to_tensor(x), hops * HOP))))
    ours = db(SpectralTimeShift(padding=padding, hop_length=HOP).shift(ops.convert_to_tensor(mel_power(x)), hops))
    assert np.mean(np.abs(reference - ours) < 0.01) >= 0.95
    assert SpectralTimeShift(max_shift_seconds=1.0, hop_length=HOP).max_shift == round(SR / HOP)


@pytest.mark.parametrize(("mode", "tolerance_db"), [("uniform", 1e-3), ("fade", 1.0), ("cosine", 1.0), ("sine", 1.0)])
def test_spectral_volume_matches_the_waveform_gain(mode: str, tolerance_db: float) -> None:
    x = calls()
    gains = np.array([[10.0], [-10.0], [5.0], [-3.0]], dtype=np.float32)
    on_audio = VolumeControl(db_limit=10.0, mode=mode)
    reference = db(mel_power(x * np.asarray(on_audio.gain(ops.convert_to_tensor(x), gains))))
    ours = db(SpectralVolumeControl(db_limit=10.0, mode=mode, hop_length=HOP).scale(
        ops.convert_to_tensor(mel_power(x)), gains[:, :, None]))
    audible = reference > reference.max(axis=(1, 2), keepdims=True) - 60.0
    assert np.abs(reference - ours)[audible].max() < tolerance_db


def test_the_front_end_runs_the_power_stage_in_training_only_and_reproducibly() -> None:
    x = calls(1.0)
    plain = np.asarray(LogMelSpectrogram(n_mels=N_MELS, frames=32)(x))

    def front_end(seed: int) -> LogMelSpectrogram:
        return LogMelSpectrogram(n_mels=N_MELS, frames=32, augment=SpectralNoiseSNR(always_apply=True, seed=seed))

    np.testing.assert_array_equal(np.asarray(front_end(0)(x)), plain)
    augmented = np.asarray(front_end(0)(x, training=True))
    assert np.abs(augmented - plain).mean() > 1.0  # dB: the noise floor rose well above the silent parts
    np.testing.assert_array_equal(np.asarray(front_end(0)(x, training=True)), augmented)
    assert not np.array_equal(np.asarray(front_end(1)(x, training=True)), augmented)


def test_power_layers_called_outside_the_front_end_say_so() -> None:
    with pytest.raises(ValueError, match="inside LogMelSpectrogram"):
        SpectralNoiseSNR(always_apply=True)(ops.ones((2, 10, N_MELS)), training=True)
