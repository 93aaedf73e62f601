"""Reading a dataset in the Kaggle RFCx layout, validated up front.

A dataset folder holds `train/<id>.flac`, `test/<id>.flac`, `train_tp.csv`, `train_fp.csv` and `sample_submission.csv`
(and, for the synthetic data, `test_truth.csv`). `load_dataset` checks all of it before any expensive work starts and
reports every problem at once, each naming the file, the CSV line and the offending value, so that a user fixes their
data in one pass instead of one crash at a time. Nothing here ever writes into the dataset folder.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.constants import BOX_COLUMNS, N_SPECIES, RECORDING_SECONDS, SAMPLE_RATE, SUBMISSION_COLUMNS
from rfcx.data.audio import AudioError, decode_fully, read_info
from rfcx.pipeline.threads import usable_cpu_count

#: A recording id must be a plain file name: no separators, no `..`, not absolute.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: How far a recording's length may be from RECORDING_SECONDS before it is reported.
LENGTH_TOLERANCE_SECONDS = 1.0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what the value was."""

    file: Path
    message: str
    line: int | None = None
    column: str | None = None
    value: object = None

    def __str__(self) -> str:
        where = f"{self.file}" + (f", line {self.line}" if self.line is not None else "")
        value = self.value.item() if isinstance(self.value, np.generic) else self.value
        what = f" ({self.column}={value!r})" if self.column is not None else ""
        return f"{where}{what}: {self.message}"


class DatasetError(ValueError):
    """The dataset cannot be used; `problems` lists every reason found, each naming file, line and value."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  - {problem}" for problem in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in the dataset:\n{shown}{more}")


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: box tables with typed columns and the recordings they refer to."""

    root: Path
    tp: pd.DataFrame
    fp: pd.DataFrame
    sample_submission: pd.DataFrame
    test_truth: pd.DataFrame | None

    @property
    def train_ids(self) -> list[str]:
        """Every train recording that has at least one box, sorted."""
        return sorted(set(self.tp.recording_id) | set(self.fp.recording_id))

    @property
    def test_ids(self) -> list[str]:
        """Test recordings in sample_submission order."""
        return list(self.sample_submission.recording_id)

    def train_path(self, recording_id: str) -> Path:
        return recording_path(self.root, "train", recording_id)

    def test_path(self, recording_id: str) -> Path:
        return recording_path(self.root, "test", recording_id)


def is_plain_id(recording_id: str) -> bool:
    """Whether a recording id is a plain file name that cannot leave its folder (`../x`, `/abs`, separators)."""
    return bool(_PLAIN_ID.match(recording_id)) and ".." not in recording_id


def recording_path(root: Path, split: str, recording_id: str) -> Path:
    """Path of a recording; refuses ids that are not plain file names."""
    if not is_plain_id(recording_id):
        raise ValueError(f"recording id {recording_id!r} is not a plain file name")
    return root / split / f"{recording_id}.flac"


def load_dataset(root: str | Path, *, check_audio: bool = True, decode_audio: bool = False,
                 workers: int | None = None) -> Dataset:
    """Load and validate a Kaggle-layout dataset; raise DatasetError listing every problem.

    `check_audio` reads every referenced recording's header (cheap); `decode_audio` also decodes each one fully, which
    catches corruption past the header at the cost of reading all the audio once.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError([Problem(root, "dataset folder not found")])
    problems: list[Problem] = []
    tp = _read_boxes(root / "train_tp.csv", problems)
    fp = _read_boxes(root / "train_fp.csv", problems)
    submission = _read_sample_submission(root / "sample_submission.csv", problems)
    truth_path = root / "test_truth.csv"
    truth = _read_sample_submission(truth_path, problems, name="test_truth.csv") if truth_path.exists() else None
    if check_audio:
        train_ids = sorted(set(tp.recording_id) | set(fp.recording_id))
        paths = [recording_path(root, "train", rid) for rid in train_ids if is_plain_id(rid)]
        paths += [recording_path(root, "test", rid) for rid in submission.recording_id if is_plain_id(rid)]
        problems += _check_recordings(paths, decode_audio, workers)
    if problems:
        raise DatasetError(problems)
    return Dataset(root=root, tp=tp, fp=fp, sample_submission=submission, test_truth=truth)


def _read_csv_as_text(path: Path, expected: tuple[str, ...], problems: list[Problem]) -> pd.DataFrame | None:
    """Read a CSV with every cell as text, so that bad cells can be reported rather than coerced."""
    if not path.is_file():
        problems.append(Problem(path, "file not found"))
        return None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="error")
    except Exception as exc:  # pandas' ParserError names the line
        problems.append(Problem(path, f"malformed CSV ({exc})"))
        return None
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        problems.append(Problem(path, f"missing column(s) {missing}; found {list(frame.columns)}"))
        return None
    return frame[list(expected)]


def _line(row_index: int) -> int:
    """CSV line of a data row (line 1 is the header)."""
    return row_index + 2


def _parse_numbers(frame: pd.DataFrame, path: Path, columns: dict[str, type],
                   problems: list[Problem]) -> tuple[pd.DataFrame, np.ndarray]:
    """Convert text columns to numbers, reporting every empty, non-numeric, NaN or non-integer cell.

    Returns the converted frame and the mask of rows whose every cell parsed, so later checks skip broken rows.
    """
    parsed = {}
    parsed_ok = np.ones(len(frame), dtype=bool)
    for column, kind in columns.items():
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if kind is int:
            bad |= np.isfinite(values) & (values != np.round(values))
        parsed_ok &= ~bad
        for index in np.flatnonzero(bad):
            expected = "an integer" if kind is int else "a finite number"
            problems.append(Problem(path, f"expected {expected}", _line(index), column, frame[column].iloc[index]))
        parsed[column] = values
    out = frame.copy()
    for column, kind in columns.items():
        values = np.nan_to_num(parsed[column])
        out[column] = values.astype(np.int64) if kind is int else values
    return out, parsed_ok


def _check_ids(frame: pd.DataFrame, path: Path, problems: list[Problem]) -> np.ndarray:
    """Report recording ids that are not plain names; return the mask of good rows."""
    good = np.array([is_plain_id(rid) for rid in frame.recording_id], dtype=bool)
    for index in np.flatnonzero(~good):
        problems.append(Problem(path, "recording id is not a plain file name (no folders, '..' or absolute paths)",
                                _line(index), "recording_id", frame.recording_id.iloc[index]))
    return good


def _read_boxes(path: Path, problems: list[Problem]) -> pd.DataFrame:
    """Read train_tp.csv or train_fp.csv; check types, ranges and that each box's recording exists."""
    empty = pd.DataFrame({column: pd.Series(dtype=float) for column in BOX_COLUMNS}).astype({"recording_id": str})
    text = _read_csv_as_text(path, BOX_COLUMNS, problems)
    if text is None:
        return empty
    number_columns = {"species_id": int, "songtype_id": int, "t_min": float, "f_min": float, "t_max": float,
                      "f_max": float}
    boxes, parsed_ok = _parse_numbers(text, path, number_columns, problems)
    good = _check_ids(boxes, path, problems) & _check_box_ranges(boxes, parsed_ok, path, problems)
    for index in np.flatnonzero(good):
        rid = boxes.recording_id.iloc[index]
        if not recording_path(path.parent, "train", rid).is_file():
            problems.append(Problem(path, f"recording train/{rid}.flac not found", _line(index), "recording_id", rid))
    return boxes.reset_index(drop=True)


def _check_box_ranges(boxes: pd.DataFrame, parsed_ok: np.ndarray, path: Path, problems: list[Problem]) -> np.ndarray:
    """Report species out of range, empty or inverted boxes and boxes outside the recording (rows that parsed only);
    return the mask of good rows."""
    nyquist = SAMPLE_RATE / 2
    checks = [
        ("species_id", ~boxes.species_id.between(0, N_SPECIES - 1), f"species_id must be in 0..{N_SPECIES - 1}"),
        ("t_min", boxes.t_min >= boxes.t_max, "t_min must be < t_max"),
        ("f_min", boxes.f_min >= boxes.f_max, "f_min must be < f_max"),
        ("t_min", boxes.t_min < 0, "t_min must be >= 0"),
        ("t_max", boxes.t_max > RECORDING_SECONDS + LENGTH_TOLERANCE_SECONDS,
         f"t_max must be <= the recording length ({RECORDING_SECONDS:g} s)"),
        ("f_min", boxes.f_min < 0, "f_min must be >= 0"),
        ("f_max", boxes.f_max > nyquist, f"f_max must be <= {nyquist:g} Hz (half the sample rate)"),
    ]
    good = parsed_ok.copy()
    for column, mask, message in checks:
        for index in np.flatnonzero(mask.to_numpy() & parsed_ok):
            good[index] = False
            problems.append(Problem(path, message, _line(index), column, boxes[column].iloc[index]))
    return good


def _read_sample_submission(path: Path, problems: list[Problem], name: str = "sample_submission.csv") -> pd.DataFrame:
    """Read sample_submission.csv (or test_truth.csv): exact columns, plain and unique ids, test recordings present."""
    text = _read_csv_as_text(path, SUBMISSION_COLUMNS, problems)
    if text is None:
        return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))
    if tuple(pd.read_csv(path, nrows=0).columns) != SUBMISSION_COLUMNS:
        problems.append(Problem(path, f"{name} columns must be exactly recording_id,s0..s{N_SPECIES - 1}"))
    frame, _ = _parse_numbers(text, path, dict.fromkeys(SUBMISSION_COLUMNS[1:], float), problems)
    good = _check_ids(frame, path, problems)
    duplicated = frame.recording_id.duplicated(keep="first").to_numpy()
    for index in np.flatnonzero(duplicated):
        problems.append(Problem(path, "duplicate test recording id", _line(index), "recording_id",
                                frame.recording_id.iloc[index]))
    for index in np.flatnonzero(good & ~duplicated):
        rid = frame.recording_id.iloc[index]
        if not recording_path(path.parent, "test", rid).is_file():
            problems.append(Problem(path, f"recording test/{rid}.flac not found", _line(index), "recording_id", rid))
    return frame.reset_index(drop=True)


def _check_recordings(paths: list[Path], decode: bool, workers: int | None) -> list[Problem]:
    """Check each existing recording's header (and optionally full decode) in parallel; missing files are reported
    where the CSV names them, so they are skipped here."""
    existing = [path for path in dict.fromkeys(paths) if path.is_file()]
    with ThreadPoolExecutor(max_workers=workers or usable_cpu_count()) as pool:
        found = list(pool.map(lambda path: _check_recording(path, decode), existing))
    return [problem for problem in found if problem is not None]


def _check_recording(path: Path, decode: bool) -> Problem | None:
    """The one problem with a recording, if any: unreadable, wrong rate, channels or length, or corrupt data."""
    try:
        info = read_info(path)
    except AudioError as exc:
        return Problem(path, str(exc).removeprefix(f"{path}: "))
    if info.sample_rate != SAMPLE_RATE:
        return Problem(path, f"sample rate must be {SAMPLE_RATE} Hz", column="sample_rate", value=info.sample_rate)
    if info.channels != 1:
        return Problem(path, "recordings must be mono", column="channels", value=info.channels)
    if not math.isclose(info.seconds, RECORDING_SECONDS, abs_tol=LENGTH_TOLERANCE_SECONDS):
        return Problem(path, f"length must be about {RECORDING_SECONDS:g} s", column="seconds",
                       value=round(info.seconds, 3))
    if decode:
        try:
            decode_fully(path)
        except AudioError as exc:
            return Problem(path, str(exc).removeprefix(f"{path}: "))
    return None
