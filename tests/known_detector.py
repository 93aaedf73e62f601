"""A detector with known behaviour and recordings with planted calls, shared by the detection tests (test_detect,
test_archive; the `models_dir` fixture in conftest.py saves the detector).

The detector is not trained: it is built from the project's own layers with fixed weights, so its behaviour is
known (species k scores high exactly when a window has energy in species k's band) and the tests check the detection
machinery rather than a model's skill.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from rfcx.constants import N_SPECIES
from rfcx.model.features import LogMelSpectrogram, mel_filterbank

RATE = 48_000
WINDOW_SECONDS = 2.0  # default hop: 1 s
N_FFT = 512
N_MELS = 32
FRAMES = 32
FMIN, FMAX = 84.0, 15056.0
#: species_id -> tone frequency (Hz): bands well apart on the mel axis.
TONES: dict[int, float] = {3: 1000.0, 7: 4000.0, 12: 10000.0}


def band_contrast_weights() -> np.ndarray:
    """(n_mels, 24): for each planted species, its tone's mel row minus the mean of the rows 2-4 below it (in dB),
    zero for the other species. A tone stands ~50 dB above those rows; noise alone gives ~0. Comparing with lower
    rows, not all rows, keeps band-limited audio (an 8 kHz recording has nothing above 4 kHz) from faking a
    contrast: the rows above a recording's content are only ever emptier."""
    filterbank = mel_filterbank(RATE, N_FFT, N_MELS, FMIN, FMAX)
    weights = np.zeros((N_MELS, N_SPECIES), dtype=np.float32)
    for species, frequency in TONES.items():
        row = int(np.argmax(filterbank[:, int(round(frequency * N_FFT / RATE))]))
        weights[row, species] = 1.0
        weights[row - 4:row - 1, species] = -1.0 / 3
    return weights


def band_detector(bias: float = -5.0) -> keras.Model:
    """Waveform -> log-mel (dB, per-window max at 0) -> per-frame band contrast (fixed Dense over the mel axis) ->
    max over frames -> sigmoid(contrast / 4 + bias): 0.5 at 20 dB of contrast when bias is -5."""
    waveform = keras.Input((int(WINDOW_SECONDS * RATE),), name="waveform", dtype="float32")
    x = LogMelSpectrogram(sample_rate=RATE, n_fft=N_FFT, hop_length=N_FFT, fmin=FMIN, fmax=FMAX, n_mels=N_MELS,
                          frames=FRAMES, name="log_mel")(waveform)
    x = keras.layers.Permute((2, 1))(keras.layers.Reshape((N_MELS, FRAMES))(x))  # (batch, frames, mels)
    contrast = keras.layers.Dense(N_SPECIES, use_bias=False, trainable=False, name="band_contrast")
    x = keras.layers.GlobalMaxPooling1D()(contrast(x))
    output = keras.layers.Dense(N_SPECIES, activation="sigmoid", trainable=False, name="species")
    model = keras.Model(waveform, output(x), name="band_detector")
    contrast.set_weights([band_contrast_weights()])
    output.set_weights([np.eye(N_SPECIES, dtype=np.float32) / 4, np.full(N_SPECIES, bias, dtype=np.float32)])
    return model



def planted_audio(seconds: float, rate: int, calls: list[tuple[int, float, float]], seed: int) -> np.ndarray:
    """Quiet white noise with a tone (20 ms fades, so onsets do not click across bands) for each planted call."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.003 * rng.standard_normal(t.size)
    for species, start, end in calls:
        envelope = np.clip(np.minimum(t - start, end - t) / 0.02, 0.0, 1.0)
        audio += 0.3 * envelope * np.sin(2 * np.pi * TONES[species] * t)
    return audio.astype(np.float32)



def detect_args(models: Path, inputs: Path, out: Path, *extra: str) -> list[str]:
    return ["detect", "--models", str(models), "--input", str(inputs), "--output", str(out), *extra]
