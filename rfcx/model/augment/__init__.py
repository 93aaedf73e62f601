"""Training-time augmentations: batched Keras 3 layers (waveform, mel-power and spectrogram stages), the per-clip
numpy reference recipe (``reference``), the data loader's mixes of several windows (Mixup, ConfuserMix), and
``build_augmentations`` that turns the config list into stages.

Importing this package registers every layer with Keras serialization (package "rfcx"), which a saved
model needs to reload with ``safe_mode=True`` and no custom_objects.
"""

from rfcx.model.augment.build import (AUGMENT_SCHEMA, TRANSFORMS, AugmentationStages, augmentation_leaves,
                                      build_augmentations)
from rfcx.model.augment.confuser import ConfuserMix, ConfuserOverlay
from rfcx.model.augment.compose import Compose, OneOf, RandomTransform
from rfcx.model.augment.mixup import Mixup, mix_targets
from rfcx.model.augment.power import SpectralNoiseSNR, SpectralTimeShift, SpectralVolumeControl, noise_mel_statistics
from rfcx.model.augment.spectrogram import MelPitchShift, SpecAugment
from rfcx.model.augment.waveform import GaussianNoiseSNR, PinkNoiseSNR, SNRNoise, TimeShift, VolumeControl

__all__ = [
    "AUGMENT_SCHEMA",
    "TRANSFORMS",
    "AugmentationStages",
    "augmentation_leaves",
    "Compose",
    "ConfuserMix",
    "ConfuserOverlay",
    "GaussianNoiseSNR",
    "MelPitchShift",
    "Mixup",
    "OneOf",
    "PinkNoiseSNR",
    "RandomTransform",
    "SNRNoise",
    "SpecAugment",
    "SpectralNoiseSNR",
    "SpectralTimeShift",
    "SpectralVolumeControl",
    "TimeShift",
    "VolumeControl",
    "build_augmentations",
    "mix_targets",
    "noise_mel_statistics",
]
