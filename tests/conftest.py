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

from rfcx.allocator import keep_freed_memory
from rfcx.constants import BOX_COLUMNS, SAMPLE_RATE, SPECIES_COLUMNS

# The tests that train in this process get the allocator setting that the workflow's jobs and the CLI use
# (rfcx.allocator): the same code path, and CPU training steps without gigabytes of page faults each.
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
