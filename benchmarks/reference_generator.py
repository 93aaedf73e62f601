"""The reference recipe's data generator, rebuilt as the baseline for `rfcx bench`.

What the original Kaggle notebook did for every sample of every batch, one clip at a time on the host: decode the
whole 60 s FLAC, cut the window out, run the augmentations in numpy (librosa's pitch shift included), compute the
mel spectrogram with librosa, convert to dB, resize with scikit-image and min-max scale. It is kept here, outside the
`rfcx` package, only so that the benchmark measures the project's pipeline against it side by side in one run.

The augmentations are the numpy reference transforms of `rfcx.model.augment.reference` (the semantics the batched layers
reproduce), built from the same `augment:` config list the project uses; a PitchShift always takes the librosa
path here, as in the notebook, and SpecAugment (not part of the reference recipe) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pandas as pd
import skimage.transform

from rfcx.data.audio import int16_to_float, read_segment
from rfcx.model.augment import reference
from rfcx.model.augment.reference import HostTransform

#: Reference transforms by config type; each takes the entry's keys (PitchShift and TimeShift also the rate).
_TRANSFORMS = {
    "GaussianNoiseSNR": reference.GaussianNoiseSNR,
    "PinkNoiseSNR": reference.PinkNoiseSNR,
    "PitchShift": reference.PitchShift,
    "TimeShift": reference.TimeShift,
    "VolumeControl": reference.VolumeControl,
}
_NEEDS_RATE = {"PitchShift", "TimeShift"}
_NOT_IN_REFERENCE = {"SpecAugment", "Mixup"}


def reference_transform(entry: Mapping[str, Any], sample_rate: int) -> HostTransform | None:
    """The numpy transform for one `augment:` entry (recursively for Compose/OneOf); None when the reference
    recipe had no such transform."""
    kind = entry["type"]
    # method / domain say where the project runs a transform; the reference always ran it on the host, per clip.
    params = {key: value for key, value in entry.items() if key not in ("type", "method", "domain", "transforms")}
    if kind in ("Compose", "OneOf"):
        children = [t for t in (reference_transform(c, sample_rate) for c in entry.get("transforms", [])) if t]
        always = params.get("always_apply", False)
        combinator = reference.Compose if kind == "Compose" else reference.OneOf
        return combinator(children, p=1.0 if always else params.get("p", 1.0))
    if kind in _NOT_IN_REFERENCE:
        return None
    if kind in _NEEDS_RATE:
        params["sr"] = sample_rate
    return _TRANSFORMS[kind](**params)


def reference_augmentations(spec: Sequence[Mapping[str, Any]], sample_rate: int) -> reference.Compose:
    """The whole `augment:` list as one reference Compose, applied to every training clip."""
    transforms = [t for t in (reference_transform(entry, sample_rate) for entry in spec) if t]
    return reference.Compose(transforms)


class ReferenceGenerator:
    """Batches of (images, labels) made the way the reference notebook made them, sample by sample.

    `windows` needs recording_id and start (seconds); `features` is the config's features section, so the image
    has the same size as the project's model input.
    """

    def __init__(self, train_dir: Path, windows: pd.DataFrame, *, window_seconds: float, features: Mapping[str, Any],
                 augment: Sequence[Mapping[str, Any]] | None, seed: int = 0):
        self.train_dir = Path(train_dir)
        self.windows = windows.reset_index(drop=True)
        self.features = dict(features)
        self.sample_rate = int(features["sample_rate"])
        self.window_samples = int(round(window_seconds * self.sample_rate))
        self.augment = reference_augmentations(augment, self.sample_rate) if augment else None
        self.rng = np.random.default_rng(seed)

    def sample(self, row: int) -> np.ndarray:
        """One (n_mels, frames) image: whole-file decode, crop, augment, librosa mel, dB, resize, min-max."""
        window = self.windows.iloc[row]
        audio = int16_to_float(read_segment(self.train_dir / f"{window.recording_id}.flac"))
        start = int(round(window.start * self.sample_rate))
        clip = audio[start:start + self.window_samples].astype(np.float32)
        if self.augment is not None:
            clip = self.augment(clip, self.rng).astype(np.float32)
        f = self.features
        mel = librosa.feature.melspectrogram(y=clip, sr=self.sample_rate, n_fft=f["n_fft"], hop_length=f["hop_length"],
                                             fmin=f["fmin"], fmax=f["fmax"], n_mels=f["n_mels"], power=2.0)
        image = librosa.power_to_db(mel, ref=np.max, top_db=f["top_db"])
        image = skimage.transform.resize(image, (f["n_mels"], f["frames"]))
        low, high = image.min(), image.max()
        return ((image - low) / max(high - low, 1e-6)).astype(np.float32)

    def batch(self, rows: Sequence[int]) -> np.ndarray:
        """A batch of images, (len(rows), n_mels, frames, 1), made one sample at a time."""
        return np.stack([self.sample(row) for row in rows])[..., None]
