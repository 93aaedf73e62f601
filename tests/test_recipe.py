"""rfcx.model.recipe: one training recipe, built once from the config, that the detector, the loader and the
augmentation figure read."""

from __future__ import annotations

import numpy as np
import pytest

from rfcx.data.audio import samples
from rfcx.model.augment.confuser import ConfuserOverlay
from rfcx.model.detector import recipe_detector
from rfcx.model.recipe import Recipe, WindowGeometry, each_augmentation_alone
from rfcx.pipeline.config import load_config
from conftest import small_config


def test_seconds_become_samples_by_rounding_in_one_place() -> None:
    assert samples(0.1, 44100) == 4410  # 0.1 * 44100 is 4409.999...: truncation would lose a sample
    geometry = WindowGeometry(sample_rate=44100, window_seconds=0.1, margin_seconds=0.3, random_crop_seconds=1.0)
    assert geometry.window_samples == 4410
    assert geometry.jitter_samples == 13230  # the random crop never reaches past the cached margin (0.3 s)
    config = load_config(None)
    assert WindowGeometry.from_config(config) == WindowGeometry(48000, 5.0, 1.0, 1.0)


def test_the_recipe_puts_each_configured_augmentation_in_its_stage_in_order() -> None:
    augment = [{"type": "ConfuserMix", "p": 0.25, "gain_db": [-9, -3]},
               {"type": "PitchShift", "p": 0.5, "method": "librosa"},
               {"type": "GaussianNoiseSNR", "p": 0.5, "domain": "waveform"},
               {"type": "TimeShift", "p": 0.5},
               {"type": "SpecAugment", "p": 0.5},
               {"type": "Mixup", "p": 0.5}]
    recipe = Recipe.from_config(load_config(None, {"augment": augment}), seed=3)
    stages = recipe.augmentations
    assert stages.overlay == ConfuserOverlay(0.25, (-9, -3)) and recipe.mixes_confusers
    assert type(stages.host).__name__ == "PitchShift" and type(stages.batch).__name__ == "Mixup"
    assert [type(stage).__name__ for stage in (stages.waveform, stages.power, stages.spectrogram)] == \
        ["GaussianNoiseSNR", "SpectralTimeShift", "SpecAugment"]
    assert not recipe.mel_power_cache  # the host, batch and waveform stages need the waveform at every step
    loader = recipe.loader_augmentations(np.array([4, 5]), np.zeros((2, 24), np.float32))
    assert loader.overlay.jitter_samples == recipe.geometry.jitter_samples and loader.overlay.p == 0.25
    assert loader.host is stages.host and loader.batch is stages.batch
    assert recipe.loader_augmentations().overlay is None  # no confusers in the fold: nothing to mix in
    # the figure shows each one-window transform alone, forced on; the mixes of several windows have no picture
    alone = [leaf["type"] for leaf, _ in each_augmentation_alone(augment, recipe.features, seed=0)]
    assert alone == ["PitchShift", "GaussianNoiseSNR", "TimeShift", "SpecAugment"]


def test_the_detector_takes_the_recipes_window_with_its_model_side_augmentations() -> None:
    config = small_config()
    recipe = Recipe.from_config(config, seed=0)
    detector = recipe_detector(recipe, config["model"])
    assert detector.input_shape == (None, recipe.geometry.window_samples)
    assert detector.get_layer("log_mel").augment is recipe.augmentations.power  # the noise and the shift, on mel power
    assert recipe.augmentations.waveform is None and recipe.mel_power_cache  # so training reads cached mel power


@pytest.mark.parametrize("augment, message", [
    ([{"type": "OneOf", "transforms": [{"type": "ConfuserMix"}]}], "must be a top-level entry"),
    ([{"type": "ConfuserMix"}, {"type": "ConfuserMix", "p": 0.2}], "ConfuserMix mixes other windows"),
    ([{"type": "ConfuserMix", "gain_db": [0, -6]}], r"augment\[0\] \(ConfuserMix\): .*low <= high"),
    ([{"type": "ConfuserMix", "p": 1.5}], "augment.0.p: 1.5 is greater than the maximum of 1"),
])
def test_confuser_mixing_is_one_top_level_augmentation(augment, message) -> None:
    with pytest.raises(ValueError, match=message):
        Recipe.from_config(load_config(None, {"augment": augment}), seed=0)
