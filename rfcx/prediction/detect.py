"""Detection on new field recordings: stream each file through the fold ensemble and merge windows into detections.

Field recordings are long (hours) and come at any sample rate, so nothing here holds a recording whole: a file is
decoded in chunks (`rfcx.data.audio.stream_blocks`), resampled to the model's rate by a streaming resampler (soxr keeps
its filter state between chunks, so chunk edges leave no seam), and cut into exactly the windows that
`rfcx.prediction.predict.window_starts` gives for the whole file, by carrying the last window's worth of samples from
one chunk into the next. Memory is then bounded by a chunk plus a few batches, whatever the recording's length. Decoding
and resampling run in a background thread while the model predicts, so a file costs max(decode, predict), not the sum.

A run writes its outputs per recording and a stamp (`detect.json`) of the models and settings that made them; a
re-run skips recordings already done under the same stamp, and redoes everything when the models or settings
changed, so retraining can never leave stale detections behind.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import keras
import numpy as np
import pandas as pd
import soxr
from tqdm import tqdm

from rfcx.constants import SAMPLE_RATE, SPECIES_COLUMNS
from rfcx.data.archive import build_manifest, output_stem, read_manifest
from rfcx.data.audio import AudioError, AudioInfo, read_info, samples, stream_blocks
from rfcx.io import file_sha256, write_csv, write_json, write_parquet
from rfcx.model.detector import load_detector
from rfcx.model.features import LogMelSpectrogram
from rfcx.prediction.detections_export import (DETECTION_COLUMNS, FAILURE_COLUMNS, SUMMARY_COLUMNS, Bands, DetectReport,
                                    ShardResult, archive_detections, empty_archive_detections, gather, load_bands,
                                    no_detections, summary_row, write_audacity_labels, write_raven_table)
from rfcx.prediction.predict import predict_batch, window_starts

T = TypeVar("T")

#: Per-recording outputs, by suffix after the recording's output stem (its path relative to the archive's root,
#: without the suffix). A recording is done when all of them exist and its done record (DONE_SUFFIX) matches.
OUTPUT_SUFFIXES: dict[str, str] = {"detections": ".detections.csv", "selections": ".selections.txt",
                                   "audacity": ".audacity.txt", "scores": ".scores.parquet"}
DONE_SUFFIX = ".done.json"


@dataclass(frozen=True)
class DetectOptions:
    """How recordings are scored and turned into detections (window and hop default to the model's window / 2)."""

    window_seconds: float | None = None
    hop_seconds: float | None = None
    min_score: float = 0.5
    merge_gap: float = 0.0
    batch_size: int = 64
    chunk_seconds: float = 60.0
    force: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Geometry:
    """Sliding-window layout in samples at the model's rate: what `window_starts` is called with."""

    sample_rate: int
    window: int
    hop: int

    def seconds(self, samples: np.ndarray | int) -> np.ndarray | float:
        return np.asarray(samples) / self.sample_rate


# ----------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------


def find_models(models: str | Path | Iterable[str | Path]) -> list[Path]:
    """The fold models: a list as given (the workflow names its folds), `models` itself when it is a .keras file,
    else every `*/model.keras` under it (sorted)."""
    if not isinstance(models, (str, Path)):
        return [Path(model) for model in models]
    models = Path(models)
    if models.is_file() and models.suffix == ".keras":
        return [models]
    found = sorted(models.glob("*/model.keras")) or sorted(models.glob("model.keras"))
    if not found:
        raise FileNotFoundError(f"{models}: no .keras file, nor any */model.keras below it")
    return found


def nested_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Every layer inside `layer`, depth first (a backbone is a model within the model)."""
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from nested_layers(sub)


def model_sample_rate(model: keras.Model) -> int:
    """The rate the model's log-mel front end expects; a model without one is assumed to take 48 kHz audio."""
    rates = [layer.sample_rate for layer in nested_layers(model) if isinstance(layer, LogMelSpectrogram)]
    return rates[0] if rates else SAMPLE_RATE


class Ensemble:
    """Fold models whose scores are averaged: every model must take the same window at the same rate."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.models = [load_detector(path) for path in paths]
        shapes = {model.inputs[0].shape[-1] for model in self.models}
        rates = {model_sample_rate(model) for model in self.models}
        if len(shapes) != 1 or len(rates) != 1:
            raise ValueError(f"fold models disagree on input length {shapes} or sample rate {rates}: {paths}")
        self.window_samples: int | None = shapes.pop()
        self.sample_rate: int = rates.pop()

    def predict(self, windows: np.ndarray, batch_size: int) -> np.ndarray:
        """Mean probability over the folds, (len(windows), 24) float32, run as full batches of `batch_size`."""
        scores = [predict_batch(model, windows, batch_size) for model in self.models]
        return np.mean(scores, axis=0)

    def finish(self, outputs: np.ndarray) -> np.ndarray:
        """A recording's window scores from its windows' predict outputs: those already are."""
        return outputs

    def geometry(self, window_seconds: float | None, hop_seconds: float | None) -> Geometry:
        """Window and hop in samples: the window is the model's input length (a different one is an error, since the
        model cannot take it), the hop half of it unless given."""
        return fixed_geometry(self.sample_rate, self.window_samples, window_seconds, hop_seconds)

    def digests(self) -> list[str]:
        return sorted(file_sha256(path) for path in self.paths)


def fixed_geometry(sample_rate: int, window: int | None, window_seconds: float | None, hop_seconds: float | None,
                   default_hop: int | None = None) -> Geometry:
    """Window and hop in samples for models that take `window` samples (None: any length, so `window_seconds`
    must say); the hop is `default_hop`, else half the window, unless `hop_seconds` is given."""
    if window_seconds is not None:
        asked = samples(window_seconds, sample_rate)
        if window is not None and asked != window:
            raise ValueError(f"--window-seconds {window_seconds} does not match the models' input of "
                             f"{window / sample_rate:g} s ({window} samples)")
        window = asked
    if window is None:
        raise ValueError("the models take any input length: give --window-seconds")
    hop = (default_hop or window // 2) if hop_seconds is None else samples(hop_seconds, sample_rate)
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop_seconds} s")
    return Geometry(sample_rate, window, hop)


class ProbeEnsemble:
    """The embedding family's fold probes over one embedding model: a window's score is the mean of the probes'
    probabilities on its embedding. The model is the one the probes were trained on, as its card (written beside
    the embeddings) names it; a model file whose sha256 differs from the card's is refused."""

    def __init__(self, card_path: str | Path, probe_paths: list[Path]):
        from rfcx.model.embedding import Embedder, model_from_card
        from rfcx.model.probe import Probe

        card = json.loads(Path(card_path).read_text())
        self.model = model_from_card(card)
        self.embedder = Embedder(self.model)
        self.paths = probe_paths
        self.probes = [Probe.load(path) for path in probe_paths]
        self.sample_rate = self.model.sample_rate
        self.window_samples = self.model.window_samples
        self.hop_samples = int(round(card["hop_seconds"] * self.sample_rate))
        self.sha256 = card["sha256"]

    def predict(self, windows: np.ndarray, batch_size: int) -> np.ndarray:
        """The windows' embeddings: the probes score them once the recording's are all there (finish), since a
        probe with context reads each window's neighbours."""
        return self.embedder(windows)

    def finish(self, outputs: np.ndarray) -> np.ndarray:
        """A recording's window scores (mean over the fold probes) from its windows' embeddings, in time order."""
        from rfcx.model.probe import recording_scores

        return recording_scores(self.probes, outputs)

    def geometry(self, window_seconds: float | None, hop_seconds: float | None) -> Geometry:
        """The embedding model's window; the hop of the grid the probes were trained on unless given. A probe with
        context knows its neighbours at that hop only, so it takes no other."""
        geometry = fixed_geometry(self.sample_rate, self.window_samples, window_seconds, hop_seconds,
                                  self.hop_samples)
        if geometry.hop != self.hop_samples and any(probe.context for probe in self.probes):
            grid = self.hop_samples / self.sample_rate
            raise ValueError(f"the probe reads each window with its neighbours on the {grid:g} s grid it was "
                             "trained on: leave the probe's hop as it is")
        return geometry

    def digests(self) -> list[str]:
        return [self.sha256, *sorted(file_sha256(path) for path in self.paths)]


@dataclass
class Member:
    """One model family of a detector, with its blend weight and its window layout."""

    name: str
    scorer: Ensemble | ProbeEnsemble
    weight: float
    geometry: Geometry | None = None


class Detector:
    """What scores a recording: one family's fold ensemble, or several families blended with the weights that the
    workflow chose out of fold (scores/blend.json). Each family slides its own window; the blend is laid on the
    finest family's windows, each taking the other families' window whose centre is nearest its own."""

    def __init__(self, members: list[Member]):
        if not members:
            raise ValueError("a detector needs at least one model family")
        self.members = [member for member in members if member.weight > 0] or members[:1]

    def set_geometry(self, window_seconds: float | None, hop_seconds: float | None) -> Geometry:
        """Each family's window layout; returns the one of the output windows (the finest hop)."""
        if window_seconds is not None and len(self.members) > 1:
            raise ValueError("--window-seconds applies to one model family alone: each family of a blend slides "
                             "its own model's window")
        for member in self.members:
            member.geometry = member.scorer.geometry(window_seconds, hop_seconds)
        return self.base.geometry

    @property
    def base(self) -> Member:
        return min(self.members, key=lambda member: member.geometry.hop / member.geometry.sample_rate)

    def stamp(self) -> dict:
        return {member.name: {"weight": member.weight, "digests": member.scorer.digests(),
                              "geometry": asdict(member.geometry)} for member in self.members}

    def score(self, info: AudioInfo, options: DetectOptions, progress: Callable[[int], None] | None = None
              ) -> pd.DataFrame:
        frames = {member.name: score_recording(info, member.scorer, member.geometry, batch_size=options.batch_size,
                                               chunk_seconds=options.chunk_seconds,
                                               progress=progress if member is self.base else None)
                  for member in self.members}
        if len(frames) == 1:
            return next(iter(frames.values()))
        return blend_windows(frames, {member.name: member.weight for member in self.members}, self.base.name)


def blend_windows(frames: dict[str, pd.DataFrame], weights: dict[str, float], base: str) -> pd.DataFrame:
    """Per-window scores of several families on `base`'s windows: each of its windows takes every other family's
    window with the nearest centre, and the scores are mixed with `weights`."""
    blended = frames[base].copy()
    centres = ((blended.start + blended.end) / 2).to_numpy()
    total = weights[base] * blended[list(SPECIES_COLUMNS)].to_numpy(np.float64)
    for name, frame in frames.items():
        if name == base:
            continue
        other = ((frame.start + frame.end) / 2).to_numpy()  # ascending, as the windows are
        right = np.clip(np.searchsorted(other, centres), 0, len(other) - 1)
        left = np.clip(right - 1, 0, len(other) - 1)
        nearest = np.where(np.abs(other[left] - centres) <= np.abs(other[right] - centres), left, right)
        total += weights[name] * frame[list(SPECIES_COLUMNS)].to_numpy(np.float64)[nearest]
    blended[list(SPECIES_COLUMNS)] = total.astype(np.float32)
    return blended


def run_detector(results: str | Path) -> Detector:
    """The detector of a finished workflow run, from its results folder: the families its blend weighed
    (scores/blend.json), else the CNN's fold models alone (stage 2's when the run pseudo-labelled)."""
    results = Path(results)
    blend = results / "scores" / "blend.json"
    families = json.loads(blend.read_text())["weights"] if blend.exists() else {"cnn": 1.0}
    models = next((folder for folder in (results / "stage2" / "models", results / "models")
                   if any(folder.glob("*/model.keras"))), None)
    if "cnn" in families and models is None:
        raise FileNotFoundError(f"{results}: no fold models under models/ (has the run finished?)")
    probes = sorted((results / "probe").glob("fold*/probe.npz")) if "probe" in families else []
    return build_detector(models if "cnn" in families else None, probes=probes,
                         embedding_card=results / "embeddings" / "model.json" if probes else None,
                         blend=blend if blend.exists() else None)


def build_detector(models: str | Path | Iterable[str | Path] | None = None, *,
                   probes: Iterable[str | Path] = (), embedding_card: str | Path | None = None,
                   blend: str | Path | None = None) -> Detector:
    """The detector of a finished run: the CNN's fold models (`models`), the probe's fold files with the card of
    the embeddings they were trained on, and the blend's weights (scores/blend.json; without it, a family alone
    weighs 1 and two weigh the same)."""
    members = []
    if models is not None:
        members.append(Member("cnn", Ensemble(find_models(models)), 1.0))
    probes = [Path(path) for path in probes]
    if probes:
        if embedding_card is None:
            raise ValueError("the probe family needs the embeddings' model card (results/embeddings/model.json)")
        members.append(Member("probe", ProbeEnsemble(embedding_card, probes), 1.0))
    weights = json.loads(Path(blend).read_text())["weights"] if blend else {}
    for member in members:
        member.weight = weights.get(member.name, 1.0 / len(members))
    return Detector(members)


# ----------------------------------------------------------------------------------------------------------------
# Streaming audio -> windows
# ----------------------------------------------------------------------------------------------------------------


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """(item, is_last) pairs, looking one item ahead: the resampler must be told which chunk ends the stream."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def resampled_blocks(info: AudioInfo, target_rate: int, chunk_seconds: float) -> Iterator[np.ndarray]:
    """Mono float32 chunks of a recording at `target_rate`, about `chunk_seconds` each, decoded and resampled as a
    stream (soxr carries its filter state across chunks, so the result matches resampling the whole file)."""
    chunk_frames = max(1, int(chunk_seconds * info.sample_rate))
    blocks = (block for _, block in stream_blocks(info.path, chunk_frames))
    if info.sample_rate == target_rate:
        yield from blocks
        return
    stream = soxr.ResampleStream(info.sample_rate, target_rate, 1, dtype="float32")
    for block, last in with_last(blocks):
        yield stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)


def stream_windows(blocks: Iterable[np.ndarray], window: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, window) for exactly the starts `window_starts` gives on the concatenated blocks, without holding them.

    Regular windows (every `hop`) go out as soon as their samples have arrived; the buffer keeps only what a later
    window can still need: samples from the next regular start, and always the last `window` samples, because the
    final window is aligned to the recording's end, which is known only when the stream ends.
    """
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # absolute index of buffer[0]
    next_start = 0
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
        end = offset + len(buffer)
        while next_start + window <= end:
            yield next_start, buffer[next_start - offset:next_start - offset + window]
            next_start += hop
        drop = int(np.clip(min(next_start, end - window) - offset, 0, len(buffer)))
        buffer, offset = buffer[drop:], offset + drop
    total = offset + len(buffer)
    for start in window_starts(total, window, hop):
        if start > next_start - hop:  # not a regular window already sent: the end-aligned tail, or a padded one
            piece = buffer[start - offset:start - offset + window]
            yield int(start), np.pad(piece, (0, window - len(piece)))


def batched(windows: Iterable[tuple[int, np.ndarray]], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(starts, (n, window) float32) batches of up to `batch_size` windows."""
    starts: list[int] = []
    stack: list[np.ndarray] = []
    for start, window in windows:
        starts.append(start)
        stack.append(window)
        if len(stack) == batch_size:
            yield np.asarray(starts, dtype=np.int64), np.stack(stack)
            starts, stack = [], []
    if stack:
        yield np.asarray(starts, dtype=np.int64), np.stack(stack)


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` in a background thread, up to `depth` ahead, so decoding overlaps prediction.

    An exception in the producer is re-raised in the consumer; a consumer that stops early stops the producer."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            put(error)

    thread = threading.Thread(target=produce, name="rfcx-detect-decode", daemon=True)
    thread.start()
    try:
        while (item := pending.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------------------------------------------
# Scoring and merging
# ----------------------------------------------------------------------------------------------------------------


def expected_windows(info: AudioInfo, geometry: Geometry) -> int:
    """Windows a recording will give (for the progress bar), from its header alone."""
    samples = int(round(info.frames * geometry.sample_rate / info.sample_rate))
    return len(window_starts(samples, geometry.window, geometry.hop))


def score_recording(info: AudioInfo, ensemble: Ensemble | ProbeEnsemble, geometry: Geometry, *, batch_size: int,
                    chunk_seconds: float, progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Per-window ensemble scores of one recording: start, end (s), s0..s23, one row per `window_starts` window."""
    if info.frames == 0:
        raise AudioError(f"{info.path}: no audio samples")
    blocks = resampled_blocks(info, geometry.sample_rate, chunk_seconds)
    starts: list[np.ndarray] = []
    outputs: list[np.ndarray] = []  # scores, or what the scorer finishes into scores (a probe: embeddings)
    for batch_starts, windows in prefetched(batched(stream_windows(blocks, geometry.window, geometry.hop),
                                                    batch_size)):
        starts.append(batch_starts)
        outputs.append(ensemble.predict(windows, batch_size))
        if progress:
            progress(len(batch_starts))
    frame = pd.DataFrame(ensemble.finish(np.concatenate(outputs)), columns=list(SPECIES_COLUMNS))
    all_starts = np.concatenate(starts)
    frame.insert(0, "end", geometry.seconds(all_starts + geometry.window))
    frame.insert(0, "start", geometry.seconds(all_starts))
    return frame


def merge_detections(window_scores: pd.DataFrame, min_score: float, merge_gap: float,
                     duration: float | None = None) -> pd.DataFrame:
    """Detections (start, end, species_id, score) from per-window scores.

    Windows at or above `min_score` are kept per species; windows of one species that overlap or lie at most
    `merge_gap` seconds apart become one detection scored by its best window. Ends are clipped to `duration`
    (a short recording's zero-padded window reaches past its end).
    """
    rows: list[pd.DataFrame] = []
    for species_id, column in enumerate(SPECIES_COLUMNS):
        hits = window_scores.loc[window_scores[column] >= min_score, ["start", "end", column]]
        if hits.empty:
            continue
        hits = hits.sort_values("start")
        reach = np.maximum.accumulate(hits["end"].to_numpy())
        new_group = np.r_[True, hits["start"].to_numpy()[1:] - reach[:-1] > merge_gap]
        merged = hits.groupby(np.cumsum(new_group)).agg(start=("start", "min"), end=("end", "max"),
                                                        score=(column, "max"))
        merged.insert(2, "species_id", species_id)
        rows.append(merged)
    if not rows:
        return no_detections()
    detections = pd.concat(rows, ignore_index=True).sort_values(["start", "species_id"], ignore_index=True)
    if duration is not None:
        detections["end"] = detections["end"].clip(upper=duration)
    return detections[list(DETECTION_COLUMNS)]


# ----------------------------------------------------------------------------------------------------------------
# An archive of recordings
# ----------------------------------------------------------------------------------------------------------------


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """A recording's output files, by kind, for its output stem (rfcx.data.archive.output_stem)."""
    return {kind: out_dir / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def run_stamp(detector: Detector, options: DetectOptions, bands: Bands) -> dict:
    """Everything the per-recording outputs depend on; a change means that earlier outputs are stale."""
    return {"models": detector.stamp(), "min_score": options.min_score, "merge_gap": options.merge_gap,
            "bands": {str(species): list(band) for species, band in sorted(bands.items())}}


def stamp_digest(stamp: dict) -> str:
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()


def done_record(recording: pd.Series, digest: str) -> dict:
    """What a finished recording's outputs were made from: the file as listed (size, modification time) and the
    detector (its stamp's digest). Outputs whose record differs are stale: the file was replaced, or the models
    or settings changed."""
    return {"size": int(recording["size"]), "mtime_ns": int(recording["mtime_ns"]), "detector": digest}


def write_recording(outputs: dict[str, Path], window_scores: pd.DataFrame, info: AudioInfo,
                    options: DetectOptions, bands: Bands, sample_rate: int) -> pd.DataFrame:
    """The four per-recording files, each atomically (the done record, written after them, says they are
    complete); returns the detections."""
    outputs["detections"].parent.mkdir(parents=True, exist_ok=True)
    detections = merge_detections(window_scores, options.min_score, options.merge_gap, duration=info.seconds)
    write_csv(detections, outputs["detections"])
    nyquist = min(info.sample_rate, sample_rate) / 2
    write_raven_table(detections, outputs["selections"], bands, nyquist)
    write_audacity_labels(detections, outputs["audacity"])
    write_parquet(window_scores, outputs["scores"])
    return detections


def detect_recordings(detector: Detector, root: str | Path, recordings: pd.DataFrame, out_dir: str | Path,
                      options: DetectOptions, bands: Bands) -> ShardResult:
    """Score the manifest rows `recordings` (files under `root`), writing each one's outputs under `out_dir` at its
    relative path. A recording whose outputs are complete and whose done record matches is read back, not scored
    again, so a killed job resumes where it stopped; a file that cannot be decoded is a failure and the others go
    on."""
    started = time.perf_counter()
    root, out_dir = Path(root), Path(out_dir)
    geometry = detector.set_geometry(options.window_seconds, options.hop_seconds)
    stamp = run_stamp(detector, options, bands)  # hashes every model file: once per job
    digest = stamp_digest(stamp)
    report = DetectReport()
    tables, summaries = [], []
    for _, recording in tqdm(list(recordings.iterrows()), desc="recordings", unit="file",
                             disable=not options.progress):
        path = root / recording["path"]
        stem = output_stem(recording["path"])
        outputs = output_paths(out_dir, stem)
        done_path = out_dir / f"{stem}{DONE_SUFFIX}"
        record = done_record(recording, digest)
        try:
            if (not options.force and done_path.exists() and json.loads(done_path.read_text()) == record
                    and all(output.exists() for output in outputs.values())):
                report.skipped += 1
                detections = pd.read_csv(outputs["detections"])
                window_scores = pd.read_parquet(outputs["scores"])
            else:
                done_path.unlink(missing_ok=True)
                info = read_info(path)
                with tqdm(total=expected_windows(info, geometry), desc=recording["path"], unit="window", leave=False,
                          disable=not options.progress) as bar:
                    window_scores = detector.score(info, options, progress=bar.update)
                detections = write_recording(outputs, window_scores, info, options, bands, geometry.sample_rate)
                write_json(record, done_path)
                report.scored += 1
                report.audio_seconds += info.seconds
            tables.append(archive_detections(recording, detections))
            summaries.append(summary_row(stem, float(recording["seconds"]), window_scores, len(detections)))
        except AudioError as error:
            report.failures.append((str(path), str(error)))
            tqdm.write(f"rfcx detect: FAILED {error}", file=sys.stderr)
    report.elapsed_seconds = time.perf_counter() - started
    detections = pd.concat(tables, ignore_index=True) if tables else empty_archive_detections()
    return ShardResult(detections, pd.DataFrame(summaries, columns=list(SUMMARY_COLUMNS)),
                       pd.DataFrame(report.failures, columns=list(FAILURE_COLUMNS)), report, stamp)


def detect_folder(models: str | Path | Iterable[str | Path] | Detector, inputs: str | Path, out_dir: str | Path,
                  options: DetectOptions = DetectOptions(), *, bands_csv: str | Path | None = None,
                  train_tp: str | Path | None = None, include: Iterable[str] = (),
                  exclude: Iterable[str] = ()) -> DetectReport:
    """Score every recording under `inputs` (a folder, walked at any depth, or one file) with `models` (a Detector,
    or the CNN's fold models) in one job, writing the outputs to `out_dir`: per recording (at its path relative to
    `inputs`) scores, detections, a Raven selection table and Audacity labels; over the archive the manifest,
    detections, summary, failures and activity tables (see gather)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    detector = models if isinstance(models, Detector) else build_detector(models)
    detector.set_geometry(options.window_seconds, options.hop_seconds)
    bands = load_bands(bands_csv, train_tp)
    manifest = build_manifest(inputs, include, exclude, previous=read_manifest(out_dir))
    manifest.write(out_dir)
    for file, error in manifest.failures.itertuples(index=False, name=None):
        tqdm.write(f"rfcx detect: FAILED {error}", file=sys.stderr)
    result = detect_recordings(detector, manifest.root, manifest.recordings, out_dir, options, bands)
    report = gather(manifest.failures, [result], out_dir, result.stamp).report
    report.elapsed_seconds = time.perf_counter() - started
    return report
