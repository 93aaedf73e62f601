"""Validation of a Kaggle-layout dataset: every bad input is reported with its file, line and value, all at once,
and nothing is ever written into the dataset folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from rfcx.data.dataset import DatasetError, load_dataset, recording_path

from conftest import write_recording


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def problems_of(root: Path, **kwargs) -> list[str]:
    """Messages of the DatasetError that loading `root` must raise; also asserts nothing was written there."""
    before = snapshot(root)
    with pytest.raises(DatasetError) as error:
        load_dataset(root, **kwargs)
    assert snapshot(root) == before
    return [str(problem) for problem in error.value.problems]


def edit_csv(path: Path, row: int, column: str, value: object) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


def test_a_valid_dataset_loads_with_typed_columns(mini_dataset: Path) -> None:
    before = snapshot(mini_dataset)
    dataset = load_dataset(mini_dataset, decode_audio=True)
    assert snapshot(mini_dataset) == before
    assert dataset.train_ids == ["aa0000001", "aa0000002", "aa0000003", "aa0000004"]
    assert dataset.test_ids == ["bb0000001", "bb0000002"]
    assert dataset.tp.species_id.dtype == "int64" and dataset.tp.t_min.dtype == "float64"


def test_a_missing_flac_is_named_with_its_csv_line(mini_dataset: Path) -> None:
    (mini_dataset / "train" / "aa0000002.flac").unlink()
    [message] = problems_of(mini_dataset)
    assert "train_tp.csv, line 3" in message and "train/aa0000002.flac not found" in message


def test_a_corrupt_flac_is_named(mini_dataset: Path) -> None:
    (mini_dataset / "test" / "bb0000002.flac").write_bytes(b"fLaC" + b"\x00garbage" * 100)
    [message] = problems_of(mini_dataset)
    assert "bb0000002.flac" in message and "unreadable" in message


def test_corruption_past_the_header_is_found_by_decoding(mini_dataset: Path) -> None:
    path = mini_dataset / "train" / "aa0000001.flac"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = b"\xff" * 4000
    path.write_bytes(bytes(data))
    load_dataset(mini_dataset, decode_audio=False)  # the header alone looks fine
    [message] = problems_of(mini_dataset, decode_audio=True)
    assert "aa0000001.flac" in message and "corrupt" in message


def test_a_wrong_sample_rate_is_named_with_the_value(mini_dataset: Path) -> None:
    write_recording(mini_dataset / "train" / "aa0000003.flac", rate=44100)
    [message] = problems_of(mini_dataset)
    assert "aa0000003.flac" in message and "sample_rate=44100" in message and "48000" in message


def test_a_stereo_recording_is_named(mini_dataset: Path) -> None:
    write_recording(mini_dataset / "test" / "bb0000001.flac", channels=2)
    [message] = problems_of(mini_dataset)
    assert "bb0000001.flac" in message and "channels=2" in message


def test_a_recording_of_the_wrong_length_is_named(mini_dataset: Path) -> None:
    write_recording(mini_dataset / "train" / "aa0000004.flac", seconds=12.0)
    [message] = problems_of(mini_dataset)
    assert "aa0000004.flac" in message and "seconds=12.0" in message


def test_a_missing_column_is_named(mini_dataset: Path) -> None:
    frame = pd.read_csv(mini_dataset / "train_fp.csv").drop(columns=["f_max"])
    frame.to_csv(mini_dataset / "train_fp.csv", index=False)
    [message] = problems_of(mini_dataset)
    assert "train_fp.csv" in message and "f_max" in message


def test_a_malformed_row_is_named_with_its_line(mini_dataset: Path) -> None:
    with open(mini_dataset / "train_tp.csv", "a") as handle:
        handle.write("aa0000001,3,1,10.0,1000.0,12.0,2000.0,extra,cells\n")
    [message] = problems_of(mini_dataset)
    assert "train_tp.csv" in message and "malformed" in message and "line 5" in message


def test_nan_and_text_in_numbers_are_named(mini_dataset: Path) -> None:
    edit_csv(mini_dataset / "train_tp.csv", 0, "t_min", "NaN")
    edit_csv(mini_dataset / "train_tp.csv", 1, "f_max", "loud")
    messages = problems_of(mini_dataset)
    assert any("line 2" in m and "t_min='NaN'" in m for m in messages)
    assert any("line 3" in m and "f_max='loud'" in m for m in messages)


def test_t_min_not_below_t_max_is_named(mini_dataset: Path) -> None:
    edit_csv(mini_dataset / "train_tp.csv", 2, "t_min", "59.5")
    [message] = problems_of(mini_dataset)
    assert "train_tp.csv, line 4" in message and "t_min=59.5" in message and "t_min must be < t_max" in message


def test_boxes_outside_the_recording_or_above_nyquist_are_named(mini_dataset: Path) -> None:
    edit_csv(mini_dataset / "train_fp.csv", 0, "t_max", "75.0")
    edit_csv(mini_dataset / "train_fp.csv", 1, "f_max", "30000")
    edit_csv(mini_dataset / "train_tp.csv", 0, "t_min", "-2")
    messages = problems_of(mini_dataset)
    assert any("train_fp.csv, line 2" in m and "t_max=75.0" in m for m in messages)
    assert any("train_fp.csv, line 3" in m and "f_max=30000.0" in m and "24000" in m for m in messages)
    assert any("train_tp.csv, line 2" in m and "t_min=-2.0" in m for m in messages)


@pytest.mark.parametrize("species", ["24", "-1", "3.5"])
def test_species_out_of_range_is_named(mini_dataset: Path, species: str) -> None:
    edit_csv(mini_dataset / "train_tp.csv", 1, "species_id", species)
    [message] = problems_of(mini_dataset)
    assert "train_tp.csv, line 3" in message and "species_id=" in message


def test_duplicate_test_ids_are_named(mini_dataset: Path) -> None:
    frame = pd.read_csv(mini_dataset / "sample_submission.csv")
    pd.concat([frame, frame.iloc[[0]]]).to_csv(mini_dataset / "sample_submission.csv", index=False)
    [message] = problems_of(mini_dataset)
    assert "sample_submission.csv, line 4" in message and "duplicate" in message and "bb0000001" in message


@pytest.mark.parametrize("bad_id", ["../escape", "/etc/passwd", "sub/dir", "..", "a\\b"])
def test_recording_ids_that_escape_the_data_folder_are_refused(mini_dataset: Path, bad_id: str) -> None:
    edit_csv(mini_dataset / "train_tp.csv", 0, "recording_id", bad_id)
    [message] = problems_of(mini_dataset)
    assert "train_tp.csv, line 2" in message and repr(bad_id) in message and "plain file name" in message
    with pytest.raises(ValueError):
        recording_path(mini_dataset, "train", bad_id)


def test_every_problem_is_reported_at_once(mini_dataset: Path) -> None:
    edit_csv(mini_dataset / "train_tp.csv", 0, "species_id", "99")
    edit_csv(mini_dataset / "train_fp.csv", 0, "t_min", "20")
    (mini_dataset / "test" / "bb0000002.flac").unlink()
    messages = problems_of(mini_dataset)
    assert len(messages) == 3


def test_a_missing_dataset_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere"):
        load_dataset(tmp_path / "nowhere")


def test_rfcx_validate_decodes_by_default_so_a_truncated_flac_fails_naming_it(mini_dataset: Path, capsys) -> None:
    from rfcx.cli import main

    path = mini_dataset / "test" / "bb0000001.flac"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut off halfway, as by a full card
    assert main(["validate", str(mini_dataset), "--no-decode"]) == 0  # the header alone looks fine
    capsys.readouterr()
    assert main(["validate", str(mini_dataset)]) == 1
    error = capsys.readouterr().err
    assert "bb0000001.flac" in error and "valid:" not in error
