"""Embedding throughput, side by side in one run: how fast the embedding model turns audio into vectors.

Three ways of reading the same BirdNET V2.4 file on one CPU thread, over the same windows of real recordings:
the embedding made the graph's output (what rfcx does, XNNPACK kept), every intermediate tensor preserved (the
usual way to read an inner tensor, which costs XNNPACK's speed), and the model's own classifier output (the
speed a plain BirdNET run gets). Then whole recordings on the grid with 1 and with `workers` threads, as the
`embed` rule runs them. Times real time is seconds of audio through the model per second of one core; per
recording it counts each recording second once, whatever the grid's overlap.

    rfcx bench-embedding data/synthetic/demo-seed0 --recordings 12
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rfcx.model.embedding import Embedder, embed_recordings, recording_windows, resolve_model


def _rate(embed, windows: np.ndarray, repeats: int = 2) -> float:
    """Windows per second of one call of `embed` over `windows`, the best of `repeats` (after a warm-up)."""
    embed(windows[:1])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        embed(windows)
        best = min(best, time.perf_counter() - started)
    return len(windows) / best


def measure(data_dir: str | Path, *, recordings: int = 12, hop_seconds: float = 1.5, workers: int = 2,
            settings: dict | None = None) -> list[dict]:
    """One row per way of running: windows/s and times real time per core."""
    from ai_edge_litert.interpreter import Interpreter

    model = resolve_model(settings or {"model": "birdnet_v2.4"})
    paths = {path.stem: path for path in sorted(Path(data_dir).glob("train/*.flac"))[:recordings]}
    _, blocks = recording_windows(next(iter(paths.values())), model, hop_seconds)
    windows = np.concatenate(blocks)[:24]

    preserved = Interpreter(model_path=str(model.path), num_threads=1, experimental_preserve_all_tensors=True)
    plain = Interpreter(model_path=str(model.path), num_threads=1)
    tensor = None

    def run(interpreter, read_tensor: bool):
        nonlocal tensor
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        if read_tensor and tensor is None:
            tensor = next(d["index"] for d in interpreter.get_tensor_details() if d["name"] == model.tensor)
        out = tensor if read_tensor else interpreter.get_output_details()[0]["index"]

        def embed(batch: np.ndarray) -> list[np.ndarray]:
            vectors = []
            for window in batch:
                interpreter.set_tensor(index, window[None])
                interpreter.invoke()
                vectors.append(interpreter.get_tensor(out).copy())
            return vectors
        return embed

    rows = [{"way": "embedding as the graph's output (rfcx)", "windows_per_s": _rate(Embedder(model), windows)},
            {"way": "all tensors preserved", "windows_per_s": _rate(run(preserved, True), windows)},
            {"way": "BirdNET's own classifier output", "windows_per_s": _rate(run(plain, False), windows)}]
    for row in rows:
        row["x_real_time_per_core"] = row["windows_per_s"] * model.window_seconds
    seconds = 0.0
    for count in (1, workers):
        started = time.perf_counter()
        index, _ = embed_recordings(paths, model, hop_seconds=hop_seconds, workers=count)
        elapsed = time.perf_counter() - started
        seconds = index.groupby("recording_id").end.max().sum()
        rows.append({"way": f"{len(paths)} recordings on the {hop_seconds:g} s grid, {count} thread(s)",
                     "windows_per_s": len(index) / elapsed,
                     "x_real_time_per_core": len(index) / elapsed * model.window_seconds / count,
                     "recording_x_real_time_per_core": seconds / elapsed / count})
    return rows
