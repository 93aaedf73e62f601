"""A field archive of recordings: the manifest of what is in it, where each recording's outputs go, the times its
file names carry, and the shards the detection work is split into.

Recorders write deployment trees such as `SITE/DATE/20240301_053000.WAV`, where file names repeat across sites, so
a recording is known by its path relative to the archive's root, and its outputs mirror that path. The manifest
lists every recording with its size, modification time and duration (from the header): comparing manifests says
exactly which files were added, removed or replaced. Shards group recordings into jobs of about `hours` of audio;
a shard ends after a recording chosen by a hash of its path (content-defined chunking, as rsync and backup tools
cut files), so adding or removing a recording changes the shard it falls in and no other: the rest of an archive
that already ran is not redone.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Iterable

import pandas as pd
import soundfile as sf

from rfcx.data.audio import AudioError, read_info
from rfcx.io import write_csv, write_parquet

#: File suffixes taken for recordings: every format libsndfile reads (WAV, FLAC, MP3, OGG, AIFF, ...).
AUDIO_SUFFIXES: frozenset[str] = frozenset({f".{name.lower()}" for name in sf.available_formats()} | {".aif", ".oga"})
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "site", "size", "mtime_ns", "seconds", "sample_rate", "file_start")
FAILURE_COLUMNS: tuple[str, ...] = ("file", "error")
#: A shard that grows past this many times the asked-for hours ends there, whatever the hashes say.
SHARD_CAP = 2.0

#: `YYYYMMDD_HHMMSS` in a file name: AudioMoth (`20240301_053000.WAV`) and Song Meter (`S4A01234_20240301_053000.wav`).
_STAMP = re.compile(r"(?<!\d)(\d{8})[_T-]?(\d{6})(?!\d)")
#: Early AudioMoth firmware named files by the UNIX time in hexadecimal (`5E8C1B20.WAV`).
_HEX_STAMP = re.compile(r"[0-9A-F]{8}")


def parse_file_start(name: str) -> datetime | None:
    """When a recording started, from its file name (AudioMoth or Song Meter `YYYYMMDD_HHMMSS`, or an early
    AudioMoth's hexadecimal UNIX time), as the recorder wrote it (AudioMoth: UTC; Song Meter: its clock's local
    time); None when the name carries no time."""
    stem = PurePosixPath(name).stem
    for match in _STAMP.finditer(stem):
        try:
            return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
        except ValueError:
            continue
    if _HEX_STAMP.fullmatch(stem):
        moment = datetime.fromtimestamp(int(stem, 16), tz=timezone.utc).replace(tzinfo=None)
        if 2015 <= moment.year <= 2035:  # AudioMoth's era: other 8-hex-digit names are not times
            return moment
    return None


def site_of(path: str) -> str:
    """A recording's site: its top folder under the archive's root ('' for files at the root)."""
    parts = PurePosixPath(path).parts
    return parts[0] if len(parts) > 1 else ""


def output_stem(path: str) -> str:
    """Where a recording's outputs go, relative to the output folder: its relative path without the suffix, so
    `A/0301/x.WAV` and `B/0301/x.WAV` never collide."""
    return str(PurePosixPath(path).with_suffix(""))


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(PurePosixPath(path).name, pattern)
               for pattern in patterns)


def walk(root: str | Path, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[str]:
    """Relative paths (POSIX, sorted) of the audio files at any depth under `root`, by suffix. Patterns are shell
    globs matched against the relative path or the file name (`*` crosses folders): a file is taken when it matches
    an include pattern (any, if none are given) and no exclude pattern. Hidden files and folders (a leading '.',
    such as macOS's `._x.WAV` companions) are skipped."""
    root = Path(root)
    include, exclude = list(include), list(exclude)
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in PurePosixPath(relative).parts):
            continue
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if (include and not _matches(relative, include)) or _matches(relative, exclude):
            continue
        found.append(relative)
    return sorted(found)


@dataclass(frozen=True)
class Manifest:
    """The recordings of an archive (one row each, MANIFEST_COLUMNS, sorted by path) and those that cannot be read
    (FAILURE_COLUMNS: the file's full path and why)."""

    root: Path
    recordings: pd.DataFrame
    failures: pd.DataFrame

    def full_path(self, path: str) -> Path:
        return self.root / path

    def write(self, out_dir: str | Path) -> None:
        """manifest.parquet and manifest_failures.csv in `out_dir`, each rewritten only when its content changed
        (their modification times then say when the archive last changed)."""
        out_dir = Path(out_dir)
        _write_if_changed(self.recordings, out_dir / "manifest.parquet")
        _write_if_changed(self.failures, out_dir / "manifest_failures.csv")


def _write_if_changed(frame: pd.DataFrame, path: Path) -> None:
    if path.exists():
        earlier = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                       keep_default_na=False)
        current = frame if path.suffix == ".parquet" else frame.astype(str)
        if earlier.reset_index(drop=True).equals(current.reset_index(drop=True)):
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    (write_parquet if path.suffix == ".parquet" else write_csv)(frame, path)


def read_manifest(out_dir: str | Path) -> pd.DataFrame | None:
    """The manifest written by an earlier run in `out_dir`, if any."""
    path = Path(out_dir) / "manifest.parquet"
    return pd.read_parquet(path) if path.exists() else None


def build_manifest(inputs: str | Path, include: Iterable[str] = (), exclude: Iterable[str] = (),
                   previous: pd.DataFrame | None = None) -> Manifest:
    """The manifest of `inputs` (a folder, walked at any depth, or one audio file). A file whose size and
    modification time match its row in `previous` keeps that row (no header is read again: an archive of thousands
    of files is listed in seconds); the others' headers are read. Files whose header cannot be read, and files that
    would write to the same outputs as another (`x.WAV` beside `x.flac`), go to the failures."""
    inputs = Path(inputs)
    if inputs.is_file():
        root, paths = inputs.parent, [inputs.name]
    elif inputs.is_dir():
        root, paths = inputs, walk(inputs, include, exclude)
    else:
        raise FileNotFoundError(f"{inputs}: no such file or folder")
    known = {} if previous is None else {row.path: row for row in previous.itertuples(index=False)}
    rows, failures, stems = [], [], {}
    for path in paths:
        full = root / path
        stat = full.stat()
        stem = output_stem(path).lower()  # case-insensitive file systems would overwrite x.WAV's outputs with X.wav's
        if stem in stems:
            failures.append((str(full), f"{full}: same name as {root / stems[stem]}, whose outputs it would "
                                        "overwrite"))
            continue
        stems[stem] = path
        earlier = known.get(path)
        if earlier is not None and earlier.size == stat.st_size and earlier.mtime_ns == stat.st_mtime_ns:
            rows.append(earlier._asdict())
            continue
        try:
            info = read_info(full)
        except AudioError as error:
            failures.append((str(full), str(error)))
            continue
        rows.append({"path": path, "site": site_of(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                     "seconds": info.seconds, "sample_rate": info.sample_rate,
                     "file_start": parse_file_start(path)})
    recordings = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(
        {"size": "int64", "mtime_ns": "int64", "seconds": "float64", "sample_rate": "int64",
         "file_start": "datetime64[ns]"})
    return Manifest(root, recordings.reset_index(drop=True),
                    pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)))


def _unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by `text` alone (not Python's salted hash): the same on every run and machine."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def shard_name(first_path: str) -> str:
    """A shard is named after its first recording, so its name stays while recordings elsewhere come and go."""
    return "shard-" + hashlib.sha256(first_path.encode()).hexdigest()[:10]


def shards(recordings: pd.DataFrame, hours: float) -> dict[str, list[str]]:
    """The recordings (manifest rows, sorted by path) split into shards of about `hours` of audio each, in path
    order: a shard ends after a recording with probability its share of `hours` (decided by the hash of its path),
    or once it holds SHARD_CAP times `hours`. Recordings of `hours` or longer end their shard."""
    target = hours * 3600.0
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    held = 0.0
    for path, seconds in zip(recordings["path"], recordings["seconds"]):
        current.append(path)
        held += seconds
        if _unit_hash(path) < seconds / target or held >= SHARD_CAP * target:
            groups[shard_name(current[0])] = current
            current, held = [], 0.0
    if current:
        groups[shard_name(current[0])] = current
    return groups


def manifest_rows(recordings: pd.DataFrame) -> list[dict]:
    """Manifest rows as plain values (times as ISO text), for a workflow rule's params: a shard's job re-runs when
    any of its rows changes (a file replaced, added or removed), and only then."""
    rows = recordings.astype({"file_start": object}).to_dict("records")
    for row in rows:
        row["file_start"] = None if pd.isna(row["file_start"]) else pd.Timestamp(row["file_start"]).isoformat()
    return rows


def manifest_frame(rows: list[dict]) -> pd.DataFrame:
    """Manifest rows (manifest_rows) back as a manifest table."""
    frame = pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))
    frame["file_start"] = pd.to_datetime(frame["file_start"])
    return frame.astype({"size": "int64", "mtime_ns": "int64", "seconds": "float64", "sample_rate": "int64",
                         "file_start": "datetime64[ns]"})


@dataclass(frozen=True)
class ArchivePlan:
    """An archive's manifest and its shards (name -> relative paths), as the workflow plans its detection jobs."""

    manifest: Manifest
    shards: dict[str, list[str]]

    def recordings(self, shard: str) -> list[str]:
        """The shard's files (full paths): its job's inputs, so a file replaced in place re-runs it."""
        return [str(self.manifest.full_path(path)) for path in self.shards[shard]]

    def rows(self, shard: str) -> list[dict]:
        members = set(self.shards[shard])
        return manifest_rows(self.manifest.recordings[self.manifest.recordings.path.isin(members)])


def plan(settings: dict, out_dir: str | Path) -> ArchivePlan:
    """The detection plan of the config's `detect` section (input_dir, include, exclude, hours_per_job): list the
    archive (reusing the manifest in `out_dir` for unchanged files), write its manifest there when it changed, and
    split it into shards of about hours_per_job hours of audio."""
    manifest = build_manifest(settings["input_dir"], settings["include"], settings["exclude"],
                              previous=read_manifest(out_dir))
    manifest.write(out_dir)
    return ArchivePlan(manifest, shards(manifest.recordings, settings["hours_per_job"]))
