"""Training from the mel-power cache (train.mel_power_cache): the cached crops are the waveform path's mel power,
the crops sit where the waveform path's would (to the hop), the image the training model computes from them is the
detector's, and a fold trains from them (or says why it cannot)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.mel_cache import MelPowerCache
from rfcx.model.recipe import Recipe, waveform_needed_by
from rfcx.model.augment import build_augmentations
from rfcx.model.detector import load_detector
from rfcx.model.detector import build_front_end, build_model, training_model
from rfcx.pipeline.config import load_config
from rfcx.training.train import train_fold
from conftest import LIGHT, small_config

RATE = 48_000
HOP = 512
WINDOW = RATE  # 1 s windows
MARGIN = 24 * HOP  # on the hop grid, so the centred crop is one too
FEATURES = load_config(None, {"features": {"n_mels": 32, "frames": 32}})["features"]


def make_cache(path: Path, audio: np.ndarray) -> WaveformCache:
    np.save(path, (audio * 20000).astype(np.int16))
    index = pd.DataFrame({"window_id": np.arange(len(audio)), "span_start": 0, "window_offset": MARGIN})
    return WaveformCache(path, index, WINDOW)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> WaveformCache:
    """Six spans of noise and a chirp whose pitch differs per span: every frame differs from its neighbours."""
    rng = np.random.default_rng(0)
    t = np.arange(WINDOW + 2 * MARGIN) / RATE
    audio = 0.05 * rng.standard_normal((6, t.size)) + 0.3 * np.sin(2 * np.pi * (800 * (1 + np.arange(6)[:, None])
                                                                                 + 3000 * t) * t)
    return make_cache(tmp_path_factory.mktemp("mel") / "waveforms.npy", audio)


def test_a_cached_crop_is_the_mel_power_of_the_waveform_crop_inside_its_two_edge_frames(cache) -> None:
    log_mel = build_front_end(FEATURES)
    mel = MelPowerCache(cache, log_mel)
    rows, jitter = np.array([0, 3, 5, 3]), np.array([-7 * HOP, 0, 11 * HOP, -MARGIN])
    cached = mel.read(rows, jitter)
    waveforms = cache.read(rows, jitter)
    direct = keras.ops.convert_to_numpy(log_mel.power_mel(keras.ops.convert_to_tensor(waveforms)))
    assert cached["power"].shape == direct.shape == (4, 1 + WINDOW // HOP, 32)
    np.testing.assert_allclose(cached["power"][:, 2:-2], direct[:, 2:-2], rtol=1e-4, atol=1e-6 * direct.max())
    # the edge frames are where the waveform path pads the crop with zeros and the span has audio
    assert not np.allclose(cached["power"][:, 0], direct[:, 0], rtol=1e-2)
    # the noises' SNR refers to the crop's mean square: the cached hops' average, within the last part-hop
    np.testing.assert_allclose(cached["signal_power"][:, 0], np.mean(np.square(waveforms), axis=1), rtol=0.02)


def test_crops_start_on_the_hop_grid_nearest_the_waveform_crop(cache) -> None:
    mel = MelPowerCache(cache, build_front_end(FEATURES))
    rows = np.arange(6).repeat(50)
    jitter = np.random.default_rng(1).integers(-MARGIN - 5_000, MARGIN + 5_000, size=rows.size)  # some clamp
    starts, exact = mel.crop_starts(rows, jitter), cache.crop_starts(rows, jitter)
    assert (starts % HOP == 0).all()
    assert np.abs(starts - exact).max() <= HOP // 2
    assert starts.min() == 0 and starts.max() == 2 * MARGIN  # the clamps at both ends of the span
    assert (mel.crop_starts(rows) == cache.offsets[rows]).all()  # an unjittered crop is the window itself


def test_a_stacked_cache_gives_each_row_its_own_span(cache, tmp_path) -> None:
    other = make_cache(tmp_path / "more.npy", 0.1 * np.random.default_rng(2).standard_normal((2, WINDOW + 2 * MARGIN)))
    stacked = StackedCache([cache, other])
    np.testing.assert_array_equal(stacked.read_spans(np.array([7, 0])),
                                  np.stack([other.read_spans(np.array([1]))[0], cache.read_spans(np.array([0]))[0]]))
    log_mel = build_front_end(FEATURES)
    mel = MelPowerCache(stacked, log_mel)
    # the same span's power, to rounding: built in other batches here and there, and oneDNN's matrix products
    # block a batch by its size, so the last bit may differ (2.6e-7 relative); another span's power differs wholly
    np.testing.assert_allclose(mel.read(np.array([7]))["power"], MelPowerCache(other, log_mel).read([1])["power"],
                               rtol=1e-5, atol=0)


def test_the_training_model_from_mel_power_computes_the_detectors_image_and_scores(tmp_path) -> None:
    """Audio silent around the window: there the span's edge frames see the zeros the waveform path pads with, so
    the whole image and the scores must match, not only the inside frames."""
    audio = np.zeros((2, WINDOW + 2 * MARGIN))
    audio[:, MARGIN:MARGIN + WINDOW] = 0.2 * np.random.default_rng(3).standard_normal((2, WINDOW))
    cache = make_cache(tmp_path / "silent_margins.npy", audio)
    # the plain min-max image and initialisation: on stationary noise the default band floor and noise gate leave the
    # image nearly blank, and zero-initialised residual branches an untrained detector's scores nearly all alike
    features = {**FEATURES, "band_floor_quantile": 0, "noise_gate_db": 0, "scaling": "minmax"}
    model = {**load_config(None)["model"], "backbone": LIGHT, "dense_units": 32, "zero_init_residual": False}
    keras.utils.set_random_seed(0)
    detector = build_model(features, model, 1.0)
    from_mel = training_model(detector, from_mel_power=True)
    mel = MelPowerCache(cache, detector.get_layer("log_mel"))
    rows = np.array([0, 1])
    expected = keras.ops.convert_to_numpy(detector(cache.read(rows), training=False))
    found = keras.ops.convert_to_numpy(from_mel(mel.read(rows), training=False))
    assert np.ptp(expected) > 1e-3
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)
    assert {weight.path for weight in detector.trainable_weights} <= {weight.path for weight in from_mel.weights}


@pytest.mark.parametrize("head, from_mel_power", [("reference", True), ("sed", True), ("reference", False)])
def test_a_fold_trains_from_mel_power_and_saves_a_detector_that_takes_audio(windows_and_cache, tmp_path, capfd,
                                                                            head, from_mel_power) -> None:
    windows, cache = windows_and_cache
    config = small_config(LIGHT, mel_power_cache=from_mel_power)
    config["model"]["head"] = head
    if head == "sed":
        for column, value in (("box_species", [0]), ("box_start", [1.2]), ("box_end", [1.6]), ("box_positive", [1])):
            windows = windows.assign(**{column: [np.asarray(value)] * len(windows)})
    history = train_fold(windows, cache, config, fold=0, out_dir=tmp_path)
    assert ("mel-power cache: 16 spans" in capfd.readouterr().err) == from_mel_power
    assert len(history) == 2 and history.val_lwlrap.notna().all()
    detector = load_detector(tmp_path / "model.keras")
    assert detector.input_shape == (None, cache.window_samples)
    assert detector.predict(cache.read(np.arange(2)), verbose=0).shape == (2, 24)


def test_augmentations_before_the_stft_keep_training_on_the_waveform(capfd) -> None:
    waveform_noise = [{"type": "GaussianNoiseSNR", "p": 0.5, "domain": "waveform"}]
    stages = build_augmentations(waveform_noise, features=FEATURES, seed=0)
    assert waveform_needed_by(stages) == "augmentations in the waveform stage"
    host_pitch = [{"type": "PitchShift", "p": 0.5, "method": "librosa"}, {"type": "Mixup", "p": 0.5}]
    assert waveform_needed_by(build_augmentations(host_pitch, features=FEATURES, seed=0)) == \
        "augmentations in the host and batch stage"
    assert waveform_needed_by(build_augmentations(load_config(None)["augment"], features=FEATURES, seed=0)) is None
    confusers = [{"type": "ConfuserMix", "p": 0.5}]  # mixes mel powers as well as waveforms
    assert waveform_needed_by(build_augmentations(confusers, features=FEATURES, seed=0)) is None
    config = load_config(None, {"augment": waveform_noise})
    assert not Recipe.from_config(config, seed=0).mel_power_cache
    assert Recipe.from_config(load_config(None), seed=0).mel_power_cache
    assert "train.mel_power_cache: computing the STFT at every step instead: augmentations in the waveform stage" \
        in capfd.readouterr().err
