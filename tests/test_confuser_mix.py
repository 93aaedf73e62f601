"""Confuser mixing (the ConfuserMix augmentation, rfcx.model.augment.confuser): fp-centred windows added to training
windows, never trained or scored alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfcx.model.augment.confuser import ConfuserMix
from rfcx.model.recipe import LoaderAugmentations
from rfcx.training.loader import WindowBatches
from conftest import small_config

#: confuser mixing at p 0.5 appended to the test config's augmentations
MIXING = [{"type": "GaussianNoiseSNR", "p": 0.5, "min_snr": 5.0, "max_snr": 20.0},
          {"type": "ConfuserMix", "p": 0.5}]


class PowerCache:
    """A stand-in mel-power cache: row r's power is r everywhere and its signal power 10 r (crops ignore jitter)."""

    def read(self, rows: np.ndarray, jitter: np.ndarray | None = None) -> dict[str, np.ndarray]:
        rows = np.asarray(rows, dtype=np.float32)
        return {"power": np.broadcast_to(rows[:, None, None], (len(rows), 3, 2)).copy(),
                "signal_power": 10 * rows[:, None]}


def one_hot(species: list[int]) -> np.ndarray:
    return np.eye(24, dtype=np.float32)[species]


def test_a_confuser_adds_its_power_at_the_gain_and_its_calls_to_the_targets() -> None:
    confusers = ConfuserMix(rows=np.array([5, 7]), targets=np.stack([np.zeros(24), one_hot([3])[0]]), p=1.0,
                            gain_db=(-3.0, -3.0))
    inputs = PowerCache().read(np.array([1, 2, 3, 4]))
    before = {name: array.copy() for name, array in inputs.items()}
    targets = one_hot([0, 1, 2, 3])
    mixed, mixed_targets = confusers(PowerCache().read, inputs, targets, np.random.default_rng(0))
    partner = (mixed["power"][:, 0, 0] - [1, 2, 3, 4]) / 10 ** -0.3  # which confuser each window got
    assert set(np.round(partner, 4)) <= {5.0, 7.0} and len(set(np.round(partner, 4))) == 2
    np.testing.assert_allclose(mixed["signal_power"][:, 0], 10 * np.array([1, 2, 3, 4]) + 10 * partner * 10 ** -0.3,
                               rtol=1e-5)
    got_call = np.isclose(partner, 7.0)  # the confuser window holding species 3's call passes it on
    np.testing.assert_array_equal(mixed_targets[:, 3], np.where(got_call, 1.0, targets[:, 3]))
    np.testing.assert_array_equal(np.delete(mixed_targets, 3, axis=1), np.delete(targets, 3, axis=1))
    for name in before:  # the batch passed in is left as it was
        np.testing.assert_array_equal(inputs[name], before[name])


def test_waveforms_add_at_the_gains_amplitude_and_p_is_the_share_of_mixed_windows(windows_and_cache) -> None:
    _, cache = windows_and_cache
    rows, partner_rows = np.arange(8), np.array([12])
    plain = {"waveform": cache.read(rows)}
    targets = one_hot(list(range(8)))
    confusers = ConfuserMix(partner_rows, np.zeros((1, 24), np.float32), p=1.0, gain_db=(-6.0, -6.0))
    read = WindowBatches(cache, np.arange(16), np.zeros((16, 24), np.float32), 4).read
    mixed, mixed_targets = confusers(read, plain, targets, np.random.default_rng(1))
    np.testing.assert_allclose(mixed["waveform"], plain["waveform"] + 10 ** -0.3 * cache.read(partner_rows),
                               atol=1e-6)
    np.testing.assert_array_equal(mixed_targets, targets)  # an all-negative confuser leaves the targets alone
    off = ConfuserMix(partner_rows, np.zeros((1, 24), np.float32), p=0.0)(read, plain, targets,
                                                                           np.random.default_rng(1))
    np.testing.assert_array_equal(off[0]["waveform"], plain["waveform"])
    big = PowerCache().read(np.zeros(4000))
    half = ConfuserMix(np.array([1]), np.zeros((1, 24), np.float32), p=0.3, gain_db=(0.0, 0.0))(
        PowerCache().read, big, np.zeros((4000, 24), np.float32), np.random.default_rng(2))
    assert abs((half[0]["power"][:, 0, 0] > 0).mean() - 0.3) < 0.03


def test_the_loader_mixes_training_batches_only_and_the_same_seed_mixes_the_same_way(windows_and_cache) -> None:
    _, cache = windows_and_cache
    targets = one_hot(list(range(8)))
    confusers = ConfuserMix(np.arange(8, 16), np.zeros((8, 24), np.float32), p=1.0)
    plain = WindowBatches(cache, np.arange(8), targets, 4, shuffle=True, seed=3)
    mixed = WindowBatches(cache, np.arange(8), targets, 4, shuffle=True, seed=3, augment=LoaderAugmentations(overlay=confusers))
    again = WindowBatches(cache, np.arange(8), targets, 4, shuffle=True, seed=3, augment=LoaderAugmentations(overlay=confusers))
    (x0, y0), (x1, y1), (x2, y2) = plain[0], mixed[0], again[0]
    assert not np.allclose(x0, x1)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(x1, x2)
    validation = WindowBatches(cache, np.arange(8), targets, 4, augment=LoaderAugmentations(overlay=confusers))
    np.testing.assert_array_equal(validation[0][0], cache.read(np.arange(4)))


def with_fp_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """The fixture's windows with the last four of each fold centred on fp boxes (all-negative labels)."""
    fp = windows.window_id >= 8
    labels = [np.zeros(24, np.int8) if is_fp else label for is_fp, label in zip(fp, windows.labels)]
    return windows.assign(source=np.where(fp, "fp", "tp"), labels=labels)


def test_fp_centred_windows_are_never_validated_on_and_with_mixing_only_mixed_in(windows_and_cache, capsys) -> None:
    from rfcx.pipeline.config import apply_schema
    from rfcx.training.fold_data import fold_datasets

    windows, cache = windows_and_cache
    windows = with_fp_windows(windows)
    tp_ids = set(windows.window_id[windows.source == "tp"])
    mixing = apply_schema({**small_config(), "augment": MIXING})
    off = apply_schema({**small_config(), "augment": [MIXING[0], {**MIXING[1], "p": 0.0}]})
    train, validation = fold_datasets(windows, cache, off, fold=0)
    assert set(validation.rows) == {0, 2, 4, 6}  # fold 0's tp windows: not its fp ones
    assert set(train.rows) == set(range(1, 16, 2)) and train.augment.overlay is None  # alone: fp ones are trained on
    train, validation = fold_datasets(windows, cache, mixing, fold=0)
    assert set(validation.rows) == {0, 2, 4, 6} and validation.augment.overlay is None
    assert set(train.rows) == {1, 3, 5, 7} and set(train.rows) <= tp_ids
    assert set(train.augment.overlay.rows) == {9, 11, 13, 15} and train.augment.overlay.p == 0.5
    assert train.augment.overlay.gain_db == (-6.0, 0.0)
    assert train.augment.overlay.jitter_samples == train.jitter_samples > 0  # confusers cropped as the windows are
    train, _ = fold_datasets(windows.assign(source="tp"), cache, mixing, fold=0)
    assert train.augment.overlay is None and len(train.rows) == 8  # nothing to mix in (no train_fp rows): trains without
    assert "no confuser mixing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="fp_window_fraction"):
        ConfuserMix(np.array([], dtype=np.int64), np.zeros((0, 24), np.float32), p=0.5)


def test_out_of_fold_scores_cover_the_windows_centred_on_calls_only(windows_and_cache, tmp_path, monkeypatch) -> None:
    import rfcx.model.detector
    from rfcx.io import write_parquet
    from rfcx.pipeline import stages
    from conftest import FirstSampleModel

    windows, cache = windows_and_cache
    write_parquet(with_fp_windows(windows), tmp_path / "windows.parquet")
    monkeypatch.setattr(rfcx.model.detector, "load_detector", lambda path: FirstSampleModel())
    monkeypatch.setattr(stages, "open_cache", lambda *args: cache)
    oof = stages.predict_oof("model.keras", tmp_path / "windows.parquet", "cache", "index", tmp_path / "oof.parquet",
                             fold=1, features={"sample_rate": 48_000}, window_seconds=1.0, batch_size=4)
    assert list(oof.window_id) == [1, 3, 5, 7]
    np.testing.assert_allclose(oof.s0, cache.read(np.array([1, 3, 5, 7]))[:, 0])
