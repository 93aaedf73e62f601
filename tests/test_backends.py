"""A detector trained and saved on one backend scores the same audio the same on another: what a user does who trains
on a laptop (TensorFlow) and predicts on a GPU machine that has only JAX. The log-mel image (front end, band floor,
noise gate, scaling, frequency channel) and the 24 scores are compared, so a backend difference in the STFT or the
mel weights shows up as such rather than hiding behind a near-constant untrained score. Runs under ``make test-jax``
(marked ``jax``); the saving side is this process's backend (TensorFlow in CI), the loading side a fresh Python on
JAX."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import run_on_backend
from rfcx.model.detector import build_model
from rfcx.pipeline.config import load_config

pytestmark = pytest.mark.jax

#: Loads the saved detector on the other backend and prints its image and scores for the saved audio.
LOAD_AND_SCORE = """
import json, sys
import keras
import numpy as np
from rfcx.model.detector import load_detector

detector = load_detector(sys.argv[1])
audio = np.load(sys.argv[2])
image_model = keras.Model(detector.inputs, detector.layers[int(sys.argv[3])].output)
print(json.dumps({"backend": keras.backend.backend(),
                  "image": np.asarray(image_model.predict(audio, verbose=0)).tolist(),
                  "scores": np.asarray(detector.predict(audio, verbose=0)).tolist()}))
"""


def image_layer_index(detector: keras.Model) -> int:
    """Index of the layer whose output is the backbone's input image (the layer just before the backbone)."""
    backbone = next(i for i, layer in enumerate(detector.layers) if isinstance(layer, keras.Model))
    return backbone - 1


def score_on(backend: str, model_path: Path, audio_path: Path, layer_index: int) -> dict:
    return run_on_backend(backend, LOAD_AND_SCORE, str(model_path), str(audio_path), str(layer_index))


def test_a_detector_saved_on_this_backend_scores_the_same_on_jax(tmp_path: Path) -> None:
    # The plain min-max image and initialisation: with the band floor, noise gate and zero-initialised residual
    # branches an untrained detector scores every window nearly the same, and the comparison would be of constants.
    config = load_config(None, {"windows": {"window_seconds": 1.0},
                                "features": {"n_mels": 32, "frames": 32, "band_floor_quantile": 0, "noise_gate_db": 0,
                                             "scaling": "minmax"},
                                "model": {"backbone": "resnet18", "dense_units": 32, "zero_init_residual": False}})
    keras.utils.set_random_seed(0)
    detector = build_model(config["features"], config["model"], config["windows"]["window_seconds"])
    # Three distinct windows: background, a 3 kHz tone in it, a faint 9 kHz chirp in it.
    rate = 48_000
    t = np.arange(detector.input_shape[-1]) / rate
    noise = 0.02 * np.random.default_rng(0).standard_normal(t.size)
    audio = np.stack([noise, noise + 0.3 * np.sin(2 * np.pi * 3_000 * t),
                      noise + 0.05 * np.sin(2 * np.pi * (9_000 + 2_000 * t) * t)]).astype("float32")
    np.save(tmp_path / "audio.npy", audio)
    detector.save(tmp_path / "model.keras")
    index = image_layer_index(detector)

    # Both sides load the saved file and score it with the same script: only the backend differs.
    found = {backend: score_on(backend, tmp_path / "model.keras", tmp_path / "audio.npy", index)
             for backend in (keras.backend.backend(), "jax")}

    saved_on, there = found[keras.backend.backend()], found["jax"]
    assert there["backend"] == "jax" and saved_on["backend"] != "jax"
    here = {key: np.asarray(saved_on[key]) for key in ("image", "scores")}
    image, scores = np.asarray(there["image"]), np.asarray(there["scores"])
    assert image.shape == here["image"].shape == (3, 32, 32, 2)
    # The three windows give different images, so the comparison is not of constants.
    assert np.abs(here["image"][1] - here["image"][0]).max() > 0.1
    assert np.abs(image - here["image"]).max() < 1e-4, np.abs(image - here["image"]).max()  # measured 3e-7
    assert scores.shape == (3, 24) and np.ptp(here["scores"]) > 1e-3
    np.testing.assert_allclose(scores, here["scores"], atol=1e-5)  # measured 1.5e-8
