"""What a GPU machine with JAX and no TensorFlow runs (the README's `KERAS_BACKEND=jax snakemake`, and
benchmarks/gpu_session.sh, the one command a lent GPU machine runs: benchmarks/gpu_check.sh then
benchmarks/gpu_quality.sh, each under a time limit), run here on the CPU with TensorFlow hidden (tests/no_tensorflow)
before any device time is spent on it: the whole workflow end to end on the tiny data, and the session at tiny size
with a light backbone and small batches (the scripts' GPU_CHECK_SET and GPU_QUALITY_SET). The GPU-sized settings
themselves (benchmarks/gpu.yaml, benchmarks/gpu-quality.yaml) are checked to be valid configs. The end-to-end checks
are marked ``jax`` (make test-jax)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rfcx.bench.throughput import inference_recordings
from rfcx.constants import SUBMISSION_COLUMNS
from rfcx.pipeline.config import load_config
from conftest import TINY, snakemake, workflow_copy

REPO = Path(__file__).resolve().parents[1]
NO_TENSORFLOW = Path(__file__).resolve().parent / "no_tensorflow"
#: The environment of a GPU machine's image, on this CPU: the JAX backend, and TensorFlow not importable.
JAX_WITHOUT_TENSORFLOW = {"KERAS_BACKEND": "jax", "PYTHONPATH": str(NO_TENSORFLOW)}


def test_the_gpu_settings_are_a_valid_config_with_gpu_sized_batches() -> None:
    config = load_config(REPO / "config.yaml", yaml.safe_load((REPO / "benchmarks" / "gpu.yaml").read_text()))
    assert config["train"]["batch_size"] == 128 and config["predict"]["batch_size"] == 256
    assert config["model"]["backbone"] == "resnet50" and config["train"]["mixed_precision"] == "auto"


def test_the_gpu_quality_settings_are_a_valid_config_with_a_larger_budget_on_the_gpu() -> None:
    cpu = load_config(REPO / "config.yaml")
    config = load_config(REPO / "config.yaml", yaml.safe_load((REPO / "benchmarks" / "gpu-quality.yaml").read_text()))

    def windows(train: dict) -> int:
        return train["epochs"] * train["steps_per_epoch"] * train["batch_size"]

    assert windows(config["train"]) >= 5 * windows(cpu["train"])
    assert config["resources"]["gpu"] is True and config["model"] == cpu["model"]
    assert config["features"] == cpu["features"] and config["augment"] == cpu["augment"]


def test_inference_recordings_cycle_the_folder_to_the_asked_count(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        (tmp_path / f"{name}.flac").write_bytes(b"")
    chosen = inference_recordings(tmp_path, 7)
    assert list(chosen) == ["a", "b", "c", "a~1", "b~1", "c~1", "a~2"]
    assert chosen["b~1"] == tmp_path / "b.flac"
    assert list(inference_recordings(tmp_path, 2)) == ["a", "b"]
    assert inference_recordings(tmp_path / "missing", 3) == {}


@pytest.mark.jax
def test_the_workflow_runs_end_to_end_on_jax_without_tensorflow(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    workdir = workflow_copy(tmp_path, TINY)
    snakemake(workdir, env=JAX_WITHOUT_TENSORFLOW)
    assert "backend jax" in (workdir / "results/logs/train/fold0.log").read_text()
    data = workdir / "data" / "synthetic" / "tiny-seed0"
    submission = pd.read_csv(workdir / "results/submission.csv")
    assert tuple(submission.columns) == SUBMISSION_COLUMNS
    assert list(submission.recording_id) == list(pd.read_csv(data / "sample_submission.csv").recording_id)
    assert submission.iloc[:, 1:].notna().all().all()
    assert 0 < json.loads((workdir / "results/scores/oof.json").read_text())["lwlrap"] <= 1
    snakemake(workdir, "--report", "report.html", env=JAX_WITHOUT_TENSORFLOW)
    assert (workdir / "report.html").stat().st_size > 100_000


@pytest.mark.jax
def test_the_one_call_gpu_session_returns_both_benchmarks_within_the_device_tools_file_limit(tmp_path: Path) -> None:
    """benchmarks/gpu_session.sh, the one command a lent machine runs: both phases, at tiny size, and what comes
    back fits the device tool's limits (8 files at most, no deeper than two folders)."""
    pytest.importorskip("jax")
    check_set, quality_set = tmp_path / "check.yaml", tmp_path / "quality.yaml"
    check_set.write_text("model: {backbone: resnet18}\ntrain: {batch_size: 8, workers: 1}\npredict: {batch_size: 16}\n")
    quality_set.write_text("folds: {n_folds: 2}\nfeatures: {n_mels: 32, frames: 32}\n"
                           "model: {backbone: resnet18, dense_units: 64}\n"
                           "train: {epochs: 1, steps_per_epoch: 2, batch_size: 4, workers: 1}\n"
                           "predict: {batch_size: 16}\nresources: {gpu: true}\n")
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    env = {**os.environ, **JAX_WITHOUT_TENSORFLOW, "PYTHON": sys.executable,
           "GPU_CHECK_SIZE": "tiny", "GPU_CHECK_SCALE": "tiny", "GPU_CHECK_SET": str(check_set),
           "DATA": str(tmp_path / "data"), "GPU_QUALITY_SCALE": "tiny", "GPU_QUALITY_SET": str(quality_set),
           "WORK": str(tmp_path / "work"), "GPU_SESSION_SCRATCH": str(scratch), "OUT": str(out),
           "GPU_SESSION_TOTAL_S": "1100", "GPU_SESSION_CHECK_S": "500"}
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_session.sh")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "gpu_check: exit 0" in result.stdout and "gpu_quality: exit 0" in result.stdout
    returned = sorted(path.name for path in out.iterdir())
    assert returned == ["QUALITY-gpu.md", "gpu-bench.json", "gpu-bench.md", "gpu-session.tgz", "quality-gpu.json"]
    assert (tmp_path / "data" / "train_tp.csv").exists()

    # gpu_check.sh: every figure of issue #5 measured on the JAX backend, with the check's own settings
    measured = json.loads((out / "gpu-bench.json").read_text())
    assert "backend jax" in measured["machine"]["backend"] and measured["machine"]["backend library"].startswith("jax")
    assert measured["train_batch_size"] == 8
    timings = measured["timings"]
    for figure in ("reference train (aug)", "pipeline train, mel-power cache (aug + dB)",
                   "train step, real augmented input", "train step, constant input",
                   "inference: decode + windows + predict"):
        assert timings[figure]["items"] > 0 and timings[figure]["per_second"] > 0, figure
    assert timings["inference: decode + windows + predict"]["items"] == 2  # the tiny size's recordings
    assert 0 < measured["ratios"]["training, real input / constant input"] < 2
    assert "| train step, real augmented input |" in (out / "gpu-bench.md").read_text()

    # gpu_quality.sh: the default recipe scored end to end on JAX, with no model among what comes back
    quality = json.loads((out / "quality-gpu.json").read_text())
    assert "jax backend" in quality["machine"]["backend"]
    (outcome,) = quality["outcomes"]
    assert outcome["recipe"] == "default" and outcome["error"] is None
    assert 0 < outcome["oof_lwlrap"] <= 1 and 0 < outcome["test_lwlrap"] <= 1 and outcome["train_seconds"] > 0
    assert "| default |" in (out / "QUALITY-gpu.md").read_text()

    # everything else in one tarball: the logs (each measured figure as it came), nvidia-smi, no models, no cache
    with tarfile.open(out / "gpu-session.tgz") as archive:
        names = archive.getnames()
        bench_log = archive.extractfile("check/gpu-bench.log").read().decode()
        train_log = archive.extractfile("quality/default/results/logs/train/fold0.log").read().decode()
    assert "  train step, constant input: 16 in " in bench_log
    assert "backend jax" in train_log
    assert {"check/nvidia-smi.txt", "quality/nvidia-smi.txt"} <= set(names)
    assert not any(name.startswith("jax-cache") or name.endswith(".keras") for name in names)
    assert list((scratch / "jax-cache").iterdir()), "JAX's persistent compilation cache was not used"


def test_a_gpu_session_phase_over_its_time_limit_is_stopped_and_the_other_still_reports(tmp_path: Path) -> None:
    """The time limits are real: a check that cannot finish in 1 s is stopped (exit 124), the quality phase is
    skipped for want of time, and the session still exits non-zero with a tarball of what there was, not with an
    earlier run's results left in its scratch folder."""
    out = tmp_path / "out"
    stale = tmp_path / "scratch" / "check" / "gpu-bench.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    # TensorFlow's backend, which every test environment has (make test has no JAX): the check then passes its
    # import check and is stopped by the limit, not failed by a missing backend first
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHON": sys.executable, "OUT": str(out),
           "GPU_SESSION_SCRATCH": str(tmp_path / "scratch"), "GPU_SESSION_TOTAL_S": "30", "GPU_SESSION_CHECK_S": "1",
           "DATA": str(tmp_path / "data")}
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_session.sh")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "gpu_check: exit 124" in result.stdout and "gpu_quality: exit skipped" in result.stdout
    assert (out / "gpu-session.tgz").exists() and not (out / "gpu-bench.json").exists()
