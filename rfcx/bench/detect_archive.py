"""Detection over an archive, measured side by side in one run (`rfcx bench-detect`).

On a made-up deployment tree (two sites, 48 kHz FLAC recordings of quiet noise: the detector's cost does not depend
on what the audio holds), a finished run's detector (`rfcx detect --results`) is timed as the workflow runs it:
- one shard on one thread (the workflow gives each detection job half the cores of a CPU machine) and two shards
  side by side on one thread each (`detect.hours_per_job` at half the archive: the shards are the two sites, read
  with `--include`), started together: the speed-up from sharding;
- one job on two threads, for comparison.
Throughput is hours of audio per hour of wall time per core used. Then peak memory (VmHWM, TensorFlow included) of
one job over a 2-hour recording and over a tree of 500 short recordings, against a stated bound: detection streams
each file in chunks and keeps one summary row per file, so neither the length of a file nor the number of files
should move the peak much.

    rfcx bench-detect --results results --markdown benchmarks/DETECT.md
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from rfcx.runlog import thread_environment

RATE = 48_000
#: Peak resident memory (MB) that one detection job may reach on the 2-hour file or the 500-file tree: TensorFlow
#: and a ResNet50 fold ensemble take ~1 GB before any audio; one 60 s chunk of audio and a few batches add little.
MEMORY_BOUND_MB = 3000


def write_noise(path: Path, seconds: float, seed: int) -> None:
    """A 16-bit mono FLAC of quiet noise, written ten minutes at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16", format="FLAC") as handle:
        left = int(seconds * RATE)
        while left > 0:
            block = min(left, 600 * RATE)
            handle.write((0.01 * rng.standard_normal(block)).astype(np.float32))
            left -= block


def build_tree(root: Path, sites: int, files_per_site: int, seconds: float) -> float:
    """SITE/DATE/YYYYMMDD_HHMMSS.flac recordings, one every `seconds`; returns the hours of audio."""
    start = datetime(2024, 3, 1, 5, 0, 0)
    for site in range(sites):
        for index in range(files_per_site):
            moment = start + timedelta(seconds=seconds * index)
            write_noise(root / f"S{site}" / moment.strftime("%Y%m%d") / f"{moment:%Y%m%d_%H%M%S}.flac", seconds,
                        seed=site * 1000 + index)
    return sites * files_per_site * seconds / 3600


def detect_job(detector: list[str], inputs: Path, out: Path, threads: int, *extra: str) -> subprocess.Popen:
    """`rfcx detect` in a fresh process capped at `threads`, printing its peak resident memory at the end."""
    args = ["detect", *detector, "--input", str(inputs), "--output", str(out), "--quiet", *extra]
    child = textwrap.dedent(f"""
        import re, sys
        from rfcx.cli import main

        code = main({args!r})
        print("PEAK_KB", re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
        sys.exit(code)
    """)
    environment = {**os.environ, **thread_environment(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", child], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(job: subprocess.Popen) -> float:
    """Wait for a detect job; its peak resident memory in MB."""
    stdout, stderr = job.communicate()
    if job.returncode != 0:
        raise RuntimeError(f"rfcx detect failed (exit {job.returncode}):\n{stderr[-3000:]}")
    return int(re.search(r"PEAK_KB (\d+)", stdout).group(1)) / 1024


def timed(*jobs: tuple) -> tuple[float, list[float]]:
    """Start the detect jobs together; wall seconds until the last ends, and each one's peak MB."""
    started = time.perf_counter()
    running = [detect_job(*job) for job in jobs]
    peaks = [finish(job) for job in running]
    return time.perf_counter() - started, peaks


def detectors(results: Path) -> dict[str, list[str]]:
    """The run's detector, and the CNN alone when the run blends it with another family."""
    found = {"ensemble": ["--results", str(results)]}
    blend = results / "scores" / "blend.json"
    if blend.exists() and len(json.loads(blend.read_text())["weights"]) > 1 and (results / "models").is_dir():
        weights = json.loads(blend.read_text())["weights"]
        found = {"ensemble (" + ", ".join(f"{name} {weight:g}" for name, weight in weights.items()) + ")":
                 found["ensemble"], "cnn alone": ["--models", str(results / "models")]}
    return found


def measure(results: Path, *, files_per_site: int = 6, minutes: float = 10.0, work_dir: Path | None = None,
            tree_files: int = 500) -> dict:
    """Every figure of the benchmark (see the module's docstring)."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="rfcx-bench-detect-"))
    archive = work / "archive"
    hours = build_tree(archive, 2, files_per_site, minutes * 60)
    rows = []
    for name, detector in detectors(results).items():
        one_shard, _ = timed((detector, archive, work / "one", 1))
        two_shards, _ = timed((detector, archive, work / "two_a", 1, "--include", "S0/*"),
                              (detector, archive, work / "two_b", 1, "--include", "S1/*"))
        two_threads, _ = timed((detector, archive, work / "threads", 2))
        for layout, seconds, cores in (("1 shard, 1 thread", one_shard, 1), ("2 shards side by side, 1 thread each",
                                                                              two_shards, 2),
                                       ("1 job, 2 threads", two_threads, 2)):
            rows.append({"detector": name, "layout": layout, "wall_s": round(seconds, 1),
                         "hours_per_hour_per_core": round(hours / (seconds / 3600) / cores, 1),
                         "speedup_vs_1_shard": round(one_shard / seconds, 2)})
    name, detector = next(iter(detectors(results).items()))
    write_noise(work / "long" / "20240301_000000.flac", 7200, seed=7)
    _, (long_peak,) = timed((detector, work / "long", work / "long_out", 1))
    build_tree(work / "tree", 5, tree_files // 5, 10.0)
    _, (tree_peak,) = timed((detector, work / "tree", work / "tree_out", 1))
    return {"hours_of_audio": hours, "rows": rows, "memory": {
        "detector": name, "bound_mb": MEMORY_BOUND_MB, "two_hour_file_peak_mb": round(long_peak),
        f"{tree_files}_file_tree_peak_mb": round(tree_peak)}, "work_dir": str(work)}


def markdown(figures: dict, results: Path) -> str:
    """The benchmark's table, with the machine it ran on."""
    from rfcx.bench.quality import machine

    host = machine()
    lines = ["# Detection over an archive", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `rfcx bench-detect` "
             f"(rfcx/bench/detect_archive.py) with the detector of `{results}`.", "",
             f"- machine: {host['cpu']}, {host['cores']} cores, accelerator: {host['accelerator']}",
             f"- software: Python {host['python']}, {host['backend']}",
             f"- archive: 2 sites, {figures['hours_of_audio']:.2f} h of 48 kHz FLAC in all", "",
             "| detector | layout | wall | hours of audio per hour per core | speed-up vs 1 shard |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['detector']} | {row['layout']} | {row['wall_s']} s | {row['hours_per_hour_per_core']} | "
              f"{row['speedup_vs_1_shard']}x |" for row in figures["rows"]]
    memory = figures["memory"]
    peaks = [(key.removesuffix("_peak_mb").replace("_", " "), value) for key, value in memory.items()
             if key.endswith("_peak_mb")]
    lines += ["", f"Peak resident memory of one detection job ({memory['detector']}, TensorFlow included; bound "
              f"{memory['bound_mb']} MB): " + ", ".join(f"{label}: {value} MB" for label, value in peaks) + "."]
    return "\n".join(lines) + "\n"


def run(results: Path, *, markdown_path: Path | None = None, **options) -> int:
    figures = measure(results, **options)
    text = markdown(figures, results)
    print(text)
    if markdown_path:
        markdown_path.write_text(text)
    over = [value for key, value in figures["memory"].items() if key.endswith("_peak_mb")
            and value > MEMORY_BOUND_MB]
    return 1 if over else 0
