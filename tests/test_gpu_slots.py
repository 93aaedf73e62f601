"""One GPU per concurrent job on a workstation: with `--resources gpu=N`, jobs running at the same time never share a
device id, the ids are all used, a job pinned by its environment (SLURM) is left alone, and a killed job frees its
GPU. The GPUs are pretended (RFCX_GPU_COUNT): nothing here needs one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rfcx.pipeline.gpu_slots import claim_gpus

#: A job: claim a GPU, record (device, start, end) while holding it.
JOB = """
import json, os, sys, time
from rfcx.pipeline.gpu_slots import claim_gpus

with claim_gpus({count}) as ids:
    start = time.time()
    time.sleep({seconds})
    record = {{"visible": os.environ["CUDA_VISIBLE_DEVICES"], "ids": ids, "start": start, "end": time.time()}}
with open(sys.argv[1], "w") as out:
    json.dump(record, out)
"""


def job_env(tmp_path: Path, gpus: int) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    return env | {"RFCX_GPU_COUNT": str(gpus), "RFCX_GPU_SLOTS_DIR": str(tmp_path / "slots")}


def overlapping(records: list[dict]) -> list[tuple[dict, dict]]:
    return [(a, b) for i, a in enumerate(records) for b in records[i + 1:]
            if a["start"] < b["end"] and b["start"] < a["end"]]


def test_concurrent_jobs_never_share_a_gpu(tmp_path: Path) -> None:
    """Six jobs started at once on two GPUs: at most two run at a time, each on its own GPU."""
    env = job_env(tmp_path, gpus=2)
    code = JOB.format(count=1, seconds=0.6)
    jobs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"job{i}.json")], env=env)
            for i in range(6)]
    assert all(job.wait(timeout=120) == 0 for job in jobs)
    records = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(6)]
    assert {record["visible"] for record in records} == {"0", "1"}
    pairs = overlapping(records)
    assert pairs, "the jobs should have run two at a time"
    for a, b in pairs:
        assert a["visible"] != b["visible"], (a, b)


def test_a_job_asking_for_two_gpus_gets_two_distinct_ones(tmp_path: Path) -> None:
    env = job_env(tmp_path, gpus=3)
    jobs = [subprocess.Popen([sys.executable, "-c", JOB.format(count=count, seconds=0.5), str(tmp_path / f"{i}.json")],
                             env=env) for i, count in enumerate((2, 1, 2))]
    assert all(job.wait(timeout=120) == 0 for job in jobs)
    records = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(3)]
    assert [len(record["ids"]) for record in records] == [2, 1, 2]
    for a, b in overlapping(records):
        assert not set(a["ids"]) & set(b["ids"]), (a, b)


def test_snakemake_with_resources_gpu_2_runs_two_jobs_at_once_on_different_gpus(tmp_path: Path) -> None:
    """The real thing: four `resources: gpu=1` jobs under `--cores 4 --resources gpu=2`."""
    # each job a script in its own process, as the shipped train/predict rules are
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input:
                expand("out/{i}.json", i=range(4)),

        rule gpu_job:
            output:
                "out/{i}.json",
            resources:
                gpu=1,
            script:
                "job.py"
        """))
    (tmp_path / "job.py").write_text(textwrap.dedent("""
        import json, os, time
        from rfcx.pipeline.gpu_slots import claim_gpus

        with claim_gpus(snakemake.resources.get("gpu", 0)):
            start = time.time()
            time.sleep(1.5)
            record = {"visible": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}
        with open(snakemake.output[0], "w") as out:
            json.dump(record, out)
        """))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "4", "--resources", "gpu=2"],
                            cwd=tmp_path, env=job_env(tmp_path, gpus=2), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads((tmp_path / "out" / f"{i}.json").read_text()) for i in range(4)]
    assert {record["visible"] for record in records} == {"0", "1"}
    pairs = overlapping(records)
    assert pairs
    for a, b in pairs:
        assert a["visible"] != b["visible"], (a, b)


def test_a_killed_job_frees_its_gpu(tmp_path: Path) -> None:
    env = job_env(tmp_path, gpus=1)
    holder = subprocess.Popen([sys.executable, "-c", JOB.format(count=1, seconds=60), str(tmp_path / "held.json")],
                              env=env)
    lock = tmp_path / "slots" / "gpu0.lock"
    deadline = time.time() + 30
    while time.time() < deadline and not lock.exists():
        time.sleep(0.1)
    time.sleep(0.5)
    holder.kill()
    holder.wait()
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    with claim_gpus(1, n_gpus=1, slots_dir=tmp_path / "slots", poll_seconds=0.1) as ids:
        assert ids == [0]


def test_devices_chosen_by_the_environment_or_no_gpu_are_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # as SLURM sets it for a job granted --gpus=1
    with claim_gpus(1, n_gpus=4, slots_dir=tmp_path) as ids:
        assert ids is None and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with claim_gpus(1, n_gpus=0, slots_dir=tmp_path) as ids:  # a CPU-only machine
        assert ids is None and "CUDA_VISIBLE_DEVICES" not in os.environ
    with claim_gpus(0, n_gpus=2, slots_dir=tmp_path) as ids:  # a job that asked for no GPU
        assert ids is None and "CUDA_VISIBLE_DEVICES" not in os.environ
    with pytest.raises(ValueError, match="asks for 3 GPU"):
        with claim_gpus(3, n_gpus=2, slots_dir=tmp_path):
            pass
