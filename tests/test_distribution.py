"""Training one fold on several devices at once (train.distribution: data_parallel), checked on the CPU split into
two virtual devices: TensorFlow's logical CPU devices, or JAX's forced host device count. Each check runs in a fresh
Python, since the devices must be configured before the backend starts."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from conftest import run_on_backend

#: Two virtual devices, then the calling test's code; it prints one JSON line with what it found.
TENSORFLOW_DEVICES = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
JAX_DEVICES = ""  # XLA_FLAGS in the environment does it

SAME_STEP = """
import json
import keras
import numpy as np
from rfcx.model.losses import MaskedBinaryCrossentropy
from rfcx.pipeline.backend import distribution_scope

rng = np.random.default_rng(0)
x = rng.standard_normal((8, 5)).astype("float32")
y = (rng.random((8, 3)) > 0.5).astype("float32")
y[0, 1] = -1.0  # a masked-out label: the masked loss must be averaged the same way on 2 devices as on 1


def one_step(kind):
    with distribution_scope(kind, batch_size=8) as devices:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=MaskedBinaryCrossentropy())
        loss = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0]
        return devices, [w.tolist() for w in model.get_weights()], loss


single_devices, single, single_loss = one_step("none")
parallel_devices, parallel, parallel_loss = one_step("data_parallel")
gap = max(float(np.abs(np.array(a) - np.array(b)).max()) for a, b in zip(single, parallel))
print(json.dumps({"devices": [single_devices, parallel_devices], "weight_gap": gap,
                  "losses": [single_loss, parallel_loss]}))
"""

TRAIN_FOLD = """
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.data.cache import WaveformCache
from rfcx.model.detector import load_detector
from rfcx.pipeline.config import load_config
from rfcx.training.train import train_fold

rate, seconds, margin = 48_000, 1.0, 0.25
rng = np.random.default_rng(0)
span = int((seconds + 2 * margin) * rate)
t = np.arange(span) / rate
species = np.arange(16) % 4
audio = 0.05 * rng.standard_normal((16, span)) + 0.5 * np.sin(2 * np.pi * (500 + 1500 * species[:, None]) * t)
out = Path(tempfile.mkdtemp())
np.save(out / "waveforms.npy", (audio * 20000).astype(np.int16))
labels = np.zeros((16, 24), dtype=np.int8)
labels[np.arange(16), species] = 1
windows = pd.DataFrame({"window_id": np.arange(16), "recording_id": [f"r{i:02d}" for i in range(16)],
                        "fold": np.arange(16) % 2, "start": 1.0, "end": 1.0 + seconds, "source": "tp",
                        "species_id": species, "labels": list(labels), "negatives": list(np.zeros_like(labels))})
index = pd.DataFrame({"window_id": np.arange(16), "span_start": 0, "window_offset": int(margin * rate)})
cache = WaveformCache(out / "waveforms.npy", index, int(seconds * rate))
config = load_config(None, {
    "windows": {"window_seconds": seconds, "margin_seconds": margin},
    "features": {"n_mels": 32, "frames": 32},
    "model": {"backbone": "resnet18", "dense_units": 32},
    "augment": [{"type": "GaussianNoiseSNR", "p": 0.5, "min_snr": 5.0, "max_snr": 20.0}],
    "train": {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "workers": 0, "distribution": "data_parallel"},
    "folds": {"n_folds": 2},
})
history = train_fold(windows, cache, config, fold=0, out_dir=out / "fold0")
scores = load_detector(out / "fold0" / "model.keras").predict(np.zeros((2, int(seconds * rate)), "float32"), verbose=0)
print(json.dumps({"epochs": len(history), "losses": history["loss"].tolist(),
                  "scores_shape": list(scores.shape), "finite": bool(np.isfinite(scores).all())}))
"""


def run_on_two_devices(backend: str, code: str) -> dict:
    env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}
    if backend == "jax":
        env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    setup = TENSORFLOW_DEVICES if backend == "tensorflow" else JAX_DEVICES
    return run_on_backend(backend, setup + textwrap.dedent(code), env=env)


def backends() -> list:
    """TensorFlow (``make test``) and JAX (marked ``jax``: ``make test-jax`` installs JAX and runs them; CI runs
    both). Where the backend is missing the check fails in its subprocess rather than being skipped."""
    return ["tensorflow", pytest.param("jax", marks=pytest.mark.jax)]


@pytest.mark.parametrize("backend", backends())
def test_a_step_on_two_devices_equals_the_same_step_on_one(backend: str) -> None:
    """Each device takes half of the batch and the gradients are averaged, so one SGD step (masked loss included)
    gives the same weights as on one device."""
    found = run_on_two_devices(backend, SAME_STEP)
    assert found["devices"] == [1, 2]
    assert found["weight_gap"] < 1e-5, found["weight_gap"]
    assert found["losses"][0] == pytest.approx(found["losses"][1], rel=1e-5)


@pytest.mark.parametrize("backend", backends())
def test_a_fold_trains_data_parallel_and_saves_a_plain_detector(backend: str) -> None:
    found = run_on_two_devices(backend, TRAIN_FOLD)
    assert "data parallel over 2 devices, 2 windows of each batch per device" in found["stderr"]
    assert found["epochs"] == 1 and all(loss == loss and loss < 1e3 for loss in found["losses"]), found["losses"]
    assert found["scores_shape"] == [2, 24] and found["finite"]


def test_a_batch_that_cannot_be_split_evenly_is_refused() -> None:
    from rfcx.pipeline.backend import _check_split

    _check_split(8, 2)
    with pytest.raises(ValueError, match="multiple of 3"):
        _check_split(8, 3)


@pytest.mark.parametrize("backend", backends())
def test_a_validation_fold_whose_last_batch_cannot_be_split_still_trains(backend: str) -> None:
    """7 validation windows in batches of 4 on 2 devices: the short last batch is padded with masked windows (JAX
    shards every batch evenly and would fail deep inside fit on a batch of 3)."""
    code = TRAIN_FOLD.replace('"fold": np.arange(16) % 2', '"fold": (np.arange(16) >= 9).astype(int)')
    found = run_on_two_devices(backend, code)
    assert found["epochs"] == 1 and all(loss == loss and loss < 1e3 for loss in found["losses"]), found["losses"]
    assert found["finite"]
