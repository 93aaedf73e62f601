"""Detection over an archive, measured side by side in one run (`rfcx bench-detect`).

On a made-up deployment tree (two sites, 48 kHz FLAC recordings of quiet noise: the detector's cost does not depend
on what the audio holds), a finished run's detector (`rfcx detect --results`) is timed as the workflow runs it:
- one shard on one thread (the workflow gives each detection job half the cores of a CPU machine) and two shards
  side by side on one thread each (`detect.hours_per_job` at half the archive: the shards are the two sites, read
  with `--include`), started together: the speed-up from sharding;
- one job on two threads, for comparison.
Throughput is hours of audio per hour of wall time per core used. Then peak memory (VmHWM, TensorFlow included) of
one job over a 2-hour recording against a 10-minute one, and over a tree of 500 short recordings against one of
10, each against the bounds below: detection streams each file in chunks and keeps one summary row per file, so
neither the length of a file nor the number of files may move the peak much.

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

from rfcx.pipeline.threads import thread_environment

RATE = 48_000
#: The bounds on one detection job's peak resident memory: at most MEMORY_BOUND_MB on the 2-hour file and on the
#: 500-file tree (a laptop with 8 GB runs it beside the rest), and at most GROWTH_BOUND_MB above the 10-minute file
#: (or the 10-file tree): half of what holding the 2-hour file's 48 kHz float32 audio whole would add (1.38 GB).
MEMORY_BOUND_MB = 4000
GROWTH_BOUND_MB = 690


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
    for index, (name, detector) in enumerate(detectors(results).items()):
        out = work / f"detector{index}"
        one_shard, _ = timed((detector, archive, out / "one", 1))
        two_shards, _ = timed((detector, archive, out / "two_a", 1, "--include", "S0/*"),
                              (detector, archive, out / "two_b", 1, "--include", "S1/*"))
        two_threads, _ = timed((detector, archive, out / "threads", 2))
        for layout, seconds, cores in (("1 shard, 1 thread", one_shard, 1), ("2 shards side by side, 1 thread each",
                                                                              two_shards, 2),
                                       ("1 job, 2 threads", two_threads, 2)):
            rows.append({"detector": name, "layout": layout, "wall_s": round(seconds, 1),
                         "hours_per_hour_per_core": round(hours / (seconds / 3600) / cores, 1),
                         "speedup_vs_1_shard": round(one_shard / seconds, 2)})
    name, detector = next(iter(detectors(results).items()))
    peaks = {}
    for label, seconds in (("10-minute file", 600), ("2-hour file", 7200)):
        write_noise(work / label / "20240301_000000.flac", seconds, seed=7)
        _, (peaks[label],) = timed((detector, work / label, work / f"{label} out", 1))
    for files in (10, tree_files):
        label = f"{files}-file tree"
        build_tree(work / label, 5, files // 5, 10.0)
        _, (peaks[label],) = timed((detector, work / label, work / f"{label} out", 1))
    return {"hours_of_audio": hours, "rows": rows, "work_dir": str(work),
            "memory": {"detector": name, "peaks_mb": {label: round(peak) for label, peak in peaks.items()},
                       "growth_mb": {"2-hour file over 10-minute file": round(peaks["2-hour file"]
                                                                               - peaks["10-minute file"]),
                                     f"{tree_files}-file tree over 10-file tree": round(
                                         peaks[f"{tree_files}-file tree"] - peaks["10-file tree"])}}}


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
    lines += ["", f"Peak resident memory of one detection job on one thread ({memory['detector']}, TensorFlow "
              f"included; bounds: {MEMORY_BOUND_MB} MB, and {GROWTH_BOUND_MB} MB of growth):", "",
              "| input | peak |", "|---|---|"]
    lines += [f"| {label} | {peak} MB |" for label, peak in memory["peaks_mb"].items()]
    lines += [f"| growth: {label} | {growth:+d} MB |" for label, growth in memory["growth_mb"].items()]
    return "\n".join(lines) + "\n"


def run(results: Path, *, markdown_path: Path | None = None, **options) -> int:
    figures = measure(results, **options)
    text = markdown(figures, results)
    print(text)
    if markdown_path:
        markdown_path.write_text(text)
    memory = figures["memory"]
    within = (max(memory["peaks_mb"].values()) <= MEMORY_BOUND_MB
              and max(memory["growth_mb"].values()) <= GROWTH_BOUND_MB)
    print("memory: within the bounds" if within else "memory: OVER A BOUND")
    return 0 if within else 1
