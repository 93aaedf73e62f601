"""One training recipe: what a detector is trained on and how, decided once from the config.

A fold's training, its data loader, the detector's layers, the report's augmentation figure and the throughput
benchmark all read the same `Recipe` instead of each reading config keys:

- **window geometry** (`WindowGeometry`): the window, the audio cached beside it and the random crop, in seconds and
  in samples at the front end's rate, converted by `rfcx.data.audio.samples` as every window, hop and crop shift
  is (detection reads its window from the saved model).
- **the augmentations in the order they run** (`rfcx.model.augment.build`): in the data loader, confuser mixing
  (overlay), per-clip host transforms, then Mixup (batch); in the model, the waveform, mel-power and dB-image stages.
- **the training input**: waveforms, or each cached span's mel power computed once per fold (`mel_power_cache`),
  which only holds when no augmentation needs the waveform at every step (`waveform_needed_by`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rfcx.data.audio import samples
from rfcx.model.augment import AugmentationStages, augmentation_leaves, build_augmentations
from rfcx.model.augment.confuser import ConfuserMix
from rfcx.model.augment.mixup import Mixup

HostTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class WindowGeometry:
    """A training window and the audio around it: `window_seconds` long (the model's input), `margin_seconds` of
    audio cached on each side, and crops shifted at random by up to `random_crop_seconds` (never past the margin)."""

    sample_rate: int
    window_seconds: float
    margin_seconds: float = 0.0
    random_crop_seconds: float = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WindowGeometry:
        return cls(int(config["features"]["sample_rate"]), float(config["windows"]["window_seconds"]),
                   float(config["windows"]["margin_seconds"]), float(config["train"]["random_crop_seconds"]))

    def samples(self, seconds: float) -> int:
        """`seconds` in whole samples at the window's rate."""
        return samples(seconds, self.sample_rate)

    @property
    def window_samples(self) -> int:
        return self.samples(self.window_seconds)

    @property
    def jitter_samples(self) -> int:
        """The largest random shift of a training crop: the random crop, kept within the cached margin."""
        return self.samples(min(self.random_crop_seconds, self.margin_seconds))


@dataclass(frozen=True)
class LoaderAugmentations:
    """The augmentations a fold's data loader runs on each training batch, in this order: `overlay` (confuser
    mixing, bound to the fold's confusers), `host` (per clip), `batch` (Mixup). Validation runs none."""

    overlay: ConfuserMix | None = None
    host: HostTransform | None = None
    batch: Mixup | None = None


@dataclass(frozen=True)
class Recipe:
    """How one fold's detector is trained (see the module docstring): built once by `from_config`."""

    geometry: WindowGeometry
    features: Mapping[str, Any]
    augmentations: AugmentationStages
    mel_power_cache: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any], seed: int) -> Recipe:
        """The recipe of a config, its augmentation layers seeded from `seed` (a fold's: config seed + fold).
        `train.mel_power_cache` is honoured only where the augmentations allow it; otherwise it says why on stderr
        and training reads waveforms."""
        augmentations = build_augmentations(config["augment"], features=config["features"], seed=seed)
        from_mel_power = bool(config["train"]["mel_power_cache"])
        reason = waveform_needed_by(augmentations)
        if from_mel_power and reason:
            print(f"train.mel_power_cache: computing the STFT at every step instead: {reason} need the waveform",
                  file=sys.stderr)
        return cls(WindowGeometry.from_config(config), dict(config["features"]), augmentations,
                   from_mel_power and reason is None)

    @property
    def mixes_confusers(self) -> bool:
        """Whether fp-centred windows are confusers mixed into training windows (then never trained on alone)."""
        return self.augmentations.overlay is not None and self.augmentations.overlay.p > 0

    def loader_augmentations(self, confuser_rows: np.ndarray | None = None,
                             confuser_targets: np.ndarray | None = None) -> LoaderAugmentations:
        """The loader's augmentations for a fold whose confusers are the cache rows `confuser_rows` (with their
        targets); without confusers there is no confuser mixing."""
        overlay = None
        if self.mixes_confusers and confuser_rows is not None and len(confuser_rows):
            overlay = self.augmentations.overlay.bind(confuser_rows, confuser_targets, self.geometry.jitter_samples)
        return LoaderAugmentations(overlay, self.augmentations.host, self.augmentations.batch)


def each_augmentation_alone(augment: Sequence[Mapping[str, Any]], features: Mapping[str, Any],
                            seed: int) -> Iterator[tuple[dict[str, Any], AugmentationStages]]:
    """Every single transform of an ``augment:`` list (inside OneOf and Compose too), forced on, with the stages it
    alone builds: what the report's augmentation figure draws. The mixes of several windows (Mixup, ConfuserMix)
    have no one-window picture and are left out."""
    for leaf in augmentation_leaves(list(augment)):
        yield leaf, build_augmentations([leaf], features=features, seed=seed)


def waveform_needed_by(stages: AugmentationStages) -> str | None:
    """Why the configured augmentations need the waveform at every step (None when they do not): host transforms
    (the librosa pitch shift), batch transforms (Mixup mixes waveforms) and waveform-domain layers run before the
    STFT, so a cached mel power would skip them. Confuser mixing adds mel powers as well as waveforms."""
    needs = [name for name in ("host", "batch", "waveform") if getattr(stages, name) is not None]
    return f"augmentations in the {' and '.join(needs)} stage" if needs else None
