"""Shared fixtures: a small hand-made dataset in the Kaggle layout (independent of the synthetic generator), made once
per session and copied for tests that damage it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from rfcx.constants import BOX_COLUMNS, SAMPLE_RATE, SPECIES_COLUMNS
from rfcx.data.cache import WaveformCache
from rfcx.pipeline.allocator import keep_freed_memory
from rfcx.pipeline.config import load_config

# The tests that train in this process get the allocator setting that the workflow's jobs and the CLI use
# (rfcx.pipeline.allocator): the same code path, and CPU training steps without gigabytes of page faults each.
keep_freed_memory()

REPO = Path(__file__).resolve().parents[1]
TRAIN_IDS = ("aa0000001", "aa0000002", "aa0000003", "aa0000004")
TEST_IDS = ("bb0000001", "bb0000002")


def write_recording(path: Path, seconds: float = 60.0, rate: int = SAMPLE_RATE, channels: int = 1,
                    seed: int = 0) -> None:
    """A real 16-bit FLAC of quiet noise with a 2 kHz tone in the middle."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    audio = 0.01 * rng.standard_normal(n)
    t = np.arange(n) / rate
    audio += 0.2 * np.sin(2 * np.pi * 2000 * t) * ((t > seconds / 2 - 1) & (t < seconds / 2 + 1))
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype="PCM_16", format="FLAC")


def make_mini_dataset(root: Path) -> Path:
    """Four train and two test recordings with a few boxes, valid in every respect."""
    for index, rid in enumerate(TRAIN_IDS):
        write_recording(root / "train" / f"{rid}.flac", seed=index)
    for index, rid in enumerate(TEST_IDS):
        write_recording(root / "test" / f"{rid}.flac", seed=10 + index)
    tp = pd.DataFrame([
        ("aa0000001", 3, 1, 29.0, 1500.0, 31.0, 2500.0),
        ("aa0000002", 5, 1, 0.5, 1500.0, 2.0, 2500.0),
        ("aa0000003", 3, 4, 57.0, 1000.0, 59.5, 3000.0),
    ], columns=list(BOX_COLUMNS))
    fp = pd.DataFrame([
        ("aa0000004", 7, 1, 10.0, 5000.0, 12.0, 8000.0),
        ("aa0000001", 9, 1, 30.0, 1500.0, 32.0, 2500.0),
    ], columns=list(BOX_COLUMNS))
    tp.to_csv(root / "train_tp.csv", index=False)
    fp.to_csv(root / "train_fp.csv", index=False)
    submission = pd.DataFrame({"recording_id": TEST_IDS, **{column: 0.0 for column in SPECIES_COLUMNS}})
    submission.to_csv(root / "sample_submission.csv", index=False)
    return root


@pytest.fixture(scope="session")
def mini_dataset_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mini_dataset(tmp_path_factory.mktemp("mini") / "data")


@pytest.fixture
def mini_dataset(mini_dataset_template: Path, tmp_path: Path) -> Path:
    """A private copy of the mini dataset that a test may damage."""
    return Path(shutil.copytree(mini_dataset_template, tmp_path / "data"))


def run_on_backend(backend: str, code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run `code` (dedented) in a fresh Python on Keras backend `backend`, CPU only, with `args` as sys.argv[1:];
    it must exit 0 and print a JSON object as its last stdout line, returned with its stderr under "stderr".

    A fresh process is the only way to get another backend (Keras picks one per process) or a thread or device
    setting that must be fixed before the backend starts."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
                   **(env or {})}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"stderr": result.stderr}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of fold models holding the detector of known behaviour (tests/known_detector.py)."""
    from known_detector import band_detector

    root = tmp_path_factory.mktemp("models")
    (root / "fold0").mkdir()
    band_detector().save(root / "fold0" / "model.keras")
    return root


# The workflow in a temporary folder (tests/test_workflow.py, tests/test_embedding.py).
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = {
    "data_dir": "synthetic",
    "synth": {"scale": "tiny", "seed": 0},
    "folds": {"n_folds": 2},
    "features": {"n_mels": 32, "frames": 32},
    "model": {"backbone": "resnet18", "dense_units": 64},  # half ResNet50's graph-tracing time, same workflow
    "train": {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "workers": 1},
    "predict": {"batch_size": 16},
}


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """Snakemake in `workdir` on 2 cores, one thread per job: a tiny run's jobs mostly trace graphs, which is
    single-threaded, so two jobs side by side finish sooner than one job on two threads. `env`: variables laid over
    this process's environment."""
    result = subprocess.run([*SNAKEMAKE, "--cores", "2", "--max-threads", "1", *args], cwd=workdir,
                            capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def workflow_copy(workdir: Path, config: dict) -> Path:
    """The workflow's code copied into `workdir` (so edits in tests stay private) with `config` as its config.yaml."""
    for item in ("Snakefile", "workflow", "rfcx", "profiles"):
        source = REPO / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / item)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


# Shared by the training tests (test_train, test_confuser_mix, test_mel_cache, test_mixup, test_sed).
RATE = 48_000
WINDOW_SECONDS = 1.0
MARGIN_SECONDS = 0.25


#: A light backbone for the tests of training mechanics (resumption, weight averaging, heads) that hold whatever the
#: backbone: on a 2-core CPU, tracing and optimising ResNet50's training graph costs ~20 s per run, ResNet18 about
#: half that.
LIGHT = "resnet18"


def small_config(backbone: str = "resnet50", **train_overrides) -> dict:
    """Defaults with a small input (1 s windows, 32x32 log-mel) so a few training steps are quick on a CPU."""
    return load_config(None, {
        "windows": {"window_seconds": WINDOW_SECONDS, "margin_seconds": MARGIN_SECONDS},
        "features": {"n_mels": 32, "frames": 32},
        "model": {"backbone": backbone, "dense_units": 64},
        "augment": [{"type": "GaussianNoiseSNR", "p": 0.5, "min_snr": 5.0, "max_snr": 20.0},
                    {"type": "TimeShift", "p": 0.5, "max_shift_seconds": 0.2, "padding": "zero"}],
        "train": {"epochs": 2, "batch_size": 4, "steps_per_epoch": 2, "workers": 0, **train_overrides},
        "folds": {"n_folds": 2},
    })


@pytest.fixture(scope="module")
def windows_and_cache(tmp_path_factory) -> tuple[pd.DataFrame, WaveformCache]:
    """16 windows in 2 folds: species k is a tone at a species-specific pitch, so the task is learnable."""
    rng = np.random.default_rng(0)
    span = int((WINDOW_SECONDS + 2 * MARGIN_SECONDS) * RATE)
    t = np.arange(span) / RATE
    species = np.arange(16) % 4
    audio = 0.05 * rng.standard_normal((16, span)) + 0.5 * np.sin(2 * np.pi * (500 + 1500 * species[:, None]) * t)
    path = tmp_path_factory.mktemp("cache") / "waveforms.npy"
    np.save(path, (audio * 20000).astype(np.int16))
    labels = np.zeros((16, 24), dtype=np.int8)
    labels[np.arange(16), species] = 1
    windows = pd.DataFrame({"window_id": np.arange(16), "recording_id": [f"r{i:02d}" for i in range(16)],
                            "fold": np.arange(16) % 2, "start": 1.0, "end": 1.0 + WINDOW_SECONDS, "source": "tp",
                            "species_id": species, "labels": list(labels), "negatives": list(np.zeros_like(labels))})
    index = pd.DataFrame({"window_id": np.arange(16), "span_start": 0,
                          "window_offset": int(MARGIN_SECONDS * RATE)})
    return windows, WaveformCache(path, index, int(WINDOW_SECONDS * RATE))


class FirstSampleModel:
    """Scores every species with the window's first sample, so a score tells which crop the model saw."""

    @staticmethod
    def predict_on_batch(windows: np.ndarray) -> np.ndarray:
        return np.repeat(windows[:, :1], 24, axis=1)
