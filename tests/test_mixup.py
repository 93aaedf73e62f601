"""Mixup in the data loader: waveforms are convex mixes, targets are mixed by union with unknowns kept unknown,
it is seeded, training-only, and configured as a top-level `augment:` entry."""

from __future__ import annotations

import numpy as np
import pytest

from rfcx.model.augment import Mixup, build_augmentations, mix_targets
from rfcx.model.recipe import LoaderAugmentations
from rfcx.training.loader import WindowBatches


def test_a_species_in_either_clip_is_in_the_mix_and_an_unknown_never_becomes_known() -> None:
    a = np.array([1, 0, 0, -1, -1, 0.3, -1], np.float32)
    b = np.array([0, 0, 1, 0, 1, 0.6, -1], np.float32)
    np.testing.assert_array_equal(mix_targets(a, b), np.array([1, 0, 1, -1, 1, 0.6, -1], np.float32))


def test_mixed_waveforms_are_convex_combinations_with_the_example_dominant() -> None:
    rng = np.random.default_rng(0)
    waveforms = rng.standard_normal((64, 10)).astype(np.float32)
    targets = np.eye(64, 24, dtype=np.float32)
    mixed, (mixed_targets,) = Mixup(p=1.0, alpha=0.4)(waveforms, [targets], np.random.default_rng(1))
    partner = np.random.default_rng(1).permutation(64)
    changed = ~np.all(mixed == waveforms, axis=1)
    assert changed.sum() >= 60  # every example with a partner other than itself
    for i in np.flatnonzero(changed):
        lam = np.linalg.lstsq(np.stack([waveforms[i], waveforms[partner[i]]], 1), mixed[i], rcond=None)[0]
        assert lam.sum() == pytest.approx(1.0, abs=1e-4) and lam[0] >= 0.5 - 1e-4
        np.testing.assert_array_equal(mixed_targets[i], mix_targets(targets[i], targets[partner[i]]))


def test_p_zero_changes_nothing_and_p_is_the_share_of_mixed_examples() -> None:
    waveforms = np.random.default_rng(0).standard_normal((2000, 4)).astype(np.float32)
    targets = np.zeros((2000, 24), np.float32)
    same, _ = Mixup(p=0.0)(waveforms, [targets], np.random.default_rng(0))
    np.testing.assert_array_equal(same, waveforms)
    mixed, _ = Mixup(p=0.3)(waveforms, [targets], np.random.default_rng(0))
    share = np.mean(~np.all(mixed == waveforms, axis=1))
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 2000)


def test_mixup_is_built_as_the_batch_stage_and_only_at_the_top_level() -> None:
    features = {"sample_rate": 48_000, "n_fft": 2048, "hop_length": 512, "fmin": 84.0, "fmax": 15056.0, "n_mels": 32}
    build = lambda spec: build_augmentations(spec, features=features, seed=0)  # noqa: E731
    stages = build([{"type": "Mixup", "p": 0.7, "alpha": 0.2}, {"type": "TimeShift", "p": 0.5}])
    assert isinstance(stages.batch, Mixup) and stages.batch.p == 0.7 and stages.batch.alpha == 0.2
    assert stages.power is not None and build([]).batch is None
    with pytest.raises(ValueError, match="top-level"):
        build([{"type": "OneOf", "transforms": [{"type": "Mixup"}, {"type": "Mixup", "alpha": 1.0}]}])
    with pytest.raises(ValueError, match="alpha"):
        build([{"type": "Mixup", "alpha": 0.0}])


def test_the_loader_mixes_training_batches_only_and_the_same_seed_mixes_the_same_way(windows_and_cache) -> None:
    _, cache = windows_and_cache
    targets = np.eye(16, 24, dtype=np.float32)
    plain = WindowBatches(cache, np.arange(16), targets, 8, shuffle=True, seed=3)
    mixed = WindowBatches(cache, np.arange(16), targets, 8, shuffle=True, seed=3, augment=LoaderAugmentations(batch=Mixup(p=1.0)))
    again = WindowBatches(cache, np.arange(16), targets, 8, shuffle=True, seed=3, augment=LoaderAugmentations(batch=Mixup(p=1.0)))
    (x0, y0), (x1, y1), (x2, y2) = plain[0], mixed[0], again[0]
    assert not np.array_equal(x0, x1) and (y1.sum(axis=1) >= 1).all() and (y1.sum(axis=1) == 2).any()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    validation = WindowBatches(cache, np.arange(16), targets, 8, augment=LoaderAugmentations(batch=Mixup(p=1.0)))
    np.testing.assert_array_equal(validation[0][1], targets[:8])
