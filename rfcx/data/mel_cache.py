"""The mel-power cache: each cached window's mel power computed once per fold, so training steps skip the STFT.

On a CPU the STFT of a 5 s window (469 frames of a 2048-point FFT, with framing and the power) is ~75% of what the
training input pipeline spends per window and per step (benchmarks/RESULTS.md), and it is the same for a window in
every epoch: only the crop's position and the augmentations change. Every default augmentation works on the mel power
or the dB image, after the STFT, so a fold can compute the mel power of each whole cached span (window plus margins)
once, and each step slices a crop of frames from it and runs only the augmentations, dB, resize and scaling
(``rfcx.model.features.MelPowerImage``).

Crops start on the STFT's hop grid (10.7 ms at 48 kHz, hop 512) instead of at any sample. Frames inside a crop are
then exactly the frames the waveform path computes; only the two frames at each edge differ: the waveform path pads
the crop with zeros there (librosa's centring), the slice sees the audio beyond the crop. The saved detector still
takes the waveform, so prediction is unchanged.
"""

from __future__ import annotations

import math
import sys
import time

import keras
import numpy as np

from rfcx.data.cache import CropSpans, StackedCache, WaveformCache
from rfcx.model.features import LogMelSpectrogram

#: Cached spans put through the STFT at once while the cache is built (bounds the peak memory of the build).
BUILD_BATCH = 32


class MelPowerCache(CropSpans):
    """Mel power (frames, n_mels) float32 and the mean square of each hop of every span of a waveform cache, in
    memory: ~294 KB per 7 s span at 112 bands (the demo's 288 spans: 81 MB). `read` returns what the mel-power
    training model takes, {"power", "signal_power"}, for crops at the same places (to the hop) as the waveform
    cache's own `read` with the same jitter."""

    def __init__(self, cache: WaveformCache | StackedCache, log_mel: LogMelSpectrogram):
        self.offsets = cache.offsets
        self.span_samples, self.window_samples = cache.span_samples, cache.window_samples
        self.hop = log_mel.hop_length
        self.frames = log_mel.native_frames(self.window_samples)
        # hops whose mean square averages to a crop's: the crop's length rounded up to whole hops
        self.energy_hops = math.ceil(self.window_samples / self.hop)
        rows = np.arange(len(self.offsets))
        power, energy = [], []
        for start in range(0, len(rows), BUILD_BATCH):
            spans = cache.read_spans(rows[start:start + BUILD_BATCH])
            power.append(keras.ops.convert_to_numpy(log_mel.power_mel(keras.ops.convert_to_tensor(spans))))
            whole_hops = spans[:, :spans.shape[1] // self.hop * self.hop].reshape(len(spans), -1, self.hop)
            energy.append(np.square(whole_hops).mean(axis=2))
        self.power = np.concatenate(power).astype(np.float32, copy=False)
        self.hop_energy = np.concatenate(energy).astype(np.float32, copy=False)

    @property
    def nbytes(self) -> int:
        return self.power.nbytes + self.hop_energy.nbytes

    def crop_frames(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
        """The first frame of each crop: the waveform cache's crop start rounded to the nearest hop, kept inside the
        span's frames."""
        starts = np.rint(super().crop_starts(rows, jitter) / self.hop).astype(np.int64)
        return np.clip(starts, 0, self.power.shape[1] - self.frames)

    def crop_starts(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> np.ndarray:
        """Where each crop starts in its span (samples), on the hop grid: the frame-wise targets follow this."""
        return self.crop_frames(rows, jitter) * self.hop

    def read(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{"power": (n, frames, n_mels), "signal_power": (n, 1)} for crops of `rows` shifted by `jitter` samples."""
        rows = np.asarray(rows, dtype=np.int64)
        first = self.crop_frames(rows, jitter)
        power = self.power[rows[:, None], first[:, None] + np.arange(self.frames)]
        hops = np.minimum(first[:, None] + np.arange(self.energy_hops), self.hop_energy.shape[1] - 1)
        signal_power = self.hop_energy[rows[:, None], hops].mean(axis=1, keepdims=True)
        return {"power": power, "signal_power": signal_power}


def mel_power_cache(cache: WaveformCache | StackedCache, detector: keras.Model) -> MelPowerCache:
    """The mel power of every cached span, through the detector's own log-mel layer, timed on stderr."""
    started = time.perf_counter()
    mel = MelPowerCache(cache, detector.get_layer("log_mel"))
    print(f"mel-power cache: {len(mel.offsets)} spans, {mel.nbytes / 2**20:.1f} MiB in memory, built in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return mel
