"""Detections in the formats people open them with: Raven Pro selection tables, Audacity labels, and the archive's
tables (every detection with its site, path and time; a summary per recording; the failures), gathered from the
detection jobs' shards.

Reviewing detections means looking at them on the spectrogram. Raven draws a selection as a time-frequency box, so
each detection gets its species' band: from a bands table when given, else the median box of that species in the
training labels (train_tp.csv), else the whole spectrum (0 Hz to Nyquist). Audacity labels carry times only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from rfcx.constants import SPECIES_COLUMNS
from rfcx.data.archive import FAILURE_COLUMNS
from rfcx.io import atomic_path, write_csv, write_json, write_parquet
from rfcx.prediction.submission import pool_recordings

#: species_id -> (low, high) frequency in Hz.
Bands = dict[int, tuple[float, float]]

RAVEN_COLUMNS: tuple[str, ...] = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                                  "High Freq (Hz)", "Species", "Score")
#: The detector and settings the archive's detections were made with, beside them.
STAMP_NAME = "detect.json"
SUMMARY_COLUMNS: tuple[str, ...] = ("recording", "duration_s", "windows", "detections", "top_species", "max_score")
DETECTION_COLUMNS: tuple[str, ...] = ("start", "end", "species_id", "score")
#: The archive's detections table: where (site, path relative to the root), when within the file, what, how sure;
#: file_start and start_time (absolute) are empty unless the file name carries its start time.
ARCHIVE_DETECTION_COLUMNS: tuple[str, ...] = ("site", "path", "start", "end", "species_id", "score", "file_start",
                                              "start_time")


def load_bands(bands_csv: str | Path | None = None, train_tp: str | Path | None = None) -> Bands:
    """Each species' band: a (species_id, f_min, f_max) table if given, else the median labelled box per species in
    `train_tp` (robust to a few odd boxes), else none (selections then span the whole spectrum)."""
    if bands_csv is not None:
        table = pd.read_csv(bands_csv)
    elif train_tp is not None:
        table = pd.read_csv(train_tp).groupby("species_id", as_index=False)[["f_min", "f_max"]].median()
    else:
        return {}
    missing = {"species_id", "f_min", "f_max"} - set(table.columns)
    if missing:
        raise ValueError(f"{bands_csv or train_tp}: missing column(s) {sorted(missing)}")
    return {int(row.species_id): (float(row.f_min), float(row.f_max)) for row in table.itertuples()}


def raven_table(detections: pd.DataFrame, bands: Bands, nyquist: float) -> pd.DataFrame:
    """A Raven Pro selection table: one selection per detection, boxed in its species' band."""
    low_high = [bands.get(int(species), (0.0, nyquist)) for species in detections["species_id"]]
    return pd.DataFrame({
        "Selection": range(1, len(detections) + 1),
        "View": "Spectrogram 1",
        "Channel": 1,
        "Begin Time (s)": detections["start"].round(4).to_numpy(),
        "End Time (s)": detections["end"].round(4).to_numpy(),
        "Low Freq (Hz)": [round(low, 1) for low, _ in low_high],
        "High Freq (Hz)": [round(high, 1) for _, high in low_high],
        "Species": [SPECIES_COLUMNS[int(species)] for species in detections["species_id"]],
        "Score": detections["score"].round(4).to_numpy(),
    }, columns=list(RAVEN_COLUMNS))


def write_raven_table(detections: pd.DataFrame, path: str | Path, bands: Bands, nyquist: float) -> None:
    """Tab-separated, as Raven's File > Open Selection Table reads it."""
    with atomic_path(path) as partial:
        raven_table(detections, bands, nyquist).to_csv(partial, sep="\t", index=False)


def audacity_labels(detections: pd.DataFrame) -> str:
    """Audacity's label-track text: start, end, label per line, tab-separated, label like `s3 0.91`."""
    return "".join(f"{row.start:.6f}\t{row.end:.6f}\t{SPECIES_COLUMNS[int(row.species_id)]} {row.score:.2f}\n"
                   for row in detections.itertuples())


def write_audacity_labels(detections: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as partial:
        partial.write_text(audacity_labels(detections))


def summary_row(recording: str, duration_s: float, window_scores: pd.DataFrame, detections: int) -> dict:
    """One line of summary.csv. The top species is the one with the highest window score in the recording (even
    below the detection threshold, so a near miss is visible), max_score that score."""
    pooled = pool_recordings(window_scores.assign(recording_id=recording), "max").iloc[0]
    best = pooled[list(SPECIES_COLUMNS)].astype(float).idxmax()
    return {"recording": recording, "duration_s": round(duration_s, 3), "windows": len(window_scores),
            "detections": detections, "top_species": SPECIES_COLUMNS.index(best), "max_score": float(pooled[best])}


def no_detections() -> pd.DataFrame:
    """An empty detections table with its columns' types."""
    return pd.DataFrame({name: pd.Series(dtype=float if name != "species_id" else int) for name in DETECTION_COLUMNS})


@dataclass
class DetectReport:
    """What a run did, for the final throughput line and the exit code."""

    scored: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def throughput(self) -> str:
        """One line: counts, recordings/s and times real time over the recordings actually scored."""
        elapsed = max(self.elapsed_seconds, 1e-9)
        return (f"detect: {self.scored} scored, {self.skipped} skipped, {self.failed} failed; "
                f"{self.audio_seconds / 3600:.2f} h of audio in {elapsed:.1f} s: "
                f"{self.scored / elapsed:.3f} recordings/s, {self.audio_seconds / elapsed:.1f}x real time")


@dataclass
class ShardResult:
    """What detection over some recordings of an archive gave: their detections (ARCHIVE_DETECTION_COLUMNS), their
    summary rows (SUMMARY_COLUMNS), the files that failed (FAILURE_COLUMNS), the run's counts and its stamp."""

    detections: pd.DataFrame
    summary: pd.DataFrame
    failures: pd.DataFrame
    report: DetectReport
    stamp: dict = field(default_factory=dict)  # the detector and settings that scored them (detect.run_stamp)

    def write(self, detections: str | Path, summary: str | Path, failures: str | Path) -> None:
        write_parquet(self.detections, detections)
        write_parquet(self.summary, summary)
        write_parquet(self.failures, failures)

    @classmethod
    def read(cls, detections: str | Path, summary: str | Path, failures: str | Path) -> ShardResult:
        """A shard's result as `write` left it (the counts are the job's business: they are in its log)."""
        return cls(pd.read_parquet(detections), pd.read_parquet(summary), pd.read_parquet(failures), DetectReport())


def archive_detections(recording: pd.Series, detections: pd.DataFrame) -> pd.DataFrame:
    """A recording's detections as rows of the archive's table: its site and relative path, and absolute times
    when its file name carries its start (rfcx.data.archive.parse_file_start)."""
    table = detections.assign(site=recording["site"], path=recording["path"], file_start=recording["file_start"])
    table["start_time"] = pd.to_datetime(table["file_start"]) + pd.to_timedelta(table["start"], unit="s")
    return table[list(ARCHIVE_DETECTION_COLUMNS)]


def empty_archive_detections() -> pd.DataFrame:
    return archive_detections(pd.Series({"site": "", "path": "", "file_start": pd.NaT}), no_detections())


def gather(manifest_failures: pd.DataFrame, results: Iterable[ShardResult], out_dir: str | Path,
           stamp: dict) -> ShardResult:
    """The archive's tables from its shards' results: detections.parquet and detections.csv (every detection, by
    path and start), summary.csv, failures.csv (unreadable files, from the manifest and from decoding), the
    activity tables and figure when file names carry times (rfcx.prediction.activity), and detect.json: the
    detector and settings the detections were made with."""
    from rfcx.prediction.activity import write_activity

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = list(results) or [ShardResult(empty_archive_detections(), pd.DataFrame(columns=list(SUMMARY_COLUMNS)),
                                            pd.DataFrame(columns=list(FAILURE_COLUMNS)), DetectReport())]
    detections = pd.concat([result.detections for result in results], ignore_index=True).sort_values(
        ["path", "start", "species_id"], ignore_index=True)
    summary = pd.concat([result.summary for result in results], ignore_index=True).sort_values(
        "recording", ignore_index=True)
    failures = pd.concat([manifest_failures, *(result.failures for result in results)], ignore_index=True
                         ).sort_values("file", ignore_index=True)
    write_parquet(detections, out_dir / "detections.parquet")
    write_csv(detections, out_dir / "detections.csv")
    write_csv(summary, out_dir / "summary.csv")
    write_csv(failures, out_dir / "failures.csv")
    write_activity(detections, out_dir)
    write_json(stamp, out_dir / STAMP_NAME)
    report = DetectReport()
    for result in results:
        report.scored += result.report.scored
        report.skipped += result.report.skipped
        report.audio_seconds += result.report.audio_seconds
        report.elapsed_seconds += result.report.elapsed_seconds
    report.failures = list(failures.itertuples(index=False, name=None))
    return ShardResult(detections, summary, failures, report, stamp)
