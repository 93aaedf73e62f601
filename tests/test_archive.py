"""A field archive (rfcx.data.archive): walking deployment trees, the manifest, times in file names, stable shards; and
`rfcx detect` over a nested tree with repeated file names (the detector of tests/test_detect.py, whose behaviour is
known)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rfcx.cli import main
from rfcx.data.archive import build_manifest, manifest_frame, manifest_rows, parse_file_start, shards, walk
from rfcx.prediction.detect import DetectOptions, Detector, build_detector, detect_recordings
from rfcx.prediction.detections_export import ARCHIVE_DETECTION_COLUMNS, gather

from known_detector import RATE, detect_args, planted_audio


@pytest.mark.parametrize("name, expected", [
    ("20240301_053000.WAV", datetime(2024, 3, 1, 5, 30, 0)),                       # AudioMoth
    ("S4A01234_20231115_231500.wav", datetime(2023, 11, 15, 23, 15, 0)),           # Song Meter SM4
    ("SMM05678_20240102_000001.flac", datetime(2024, 1, 2, 0, 0, 1)),               # Song Meter Mini
    ("5E8C1B20.WAV", datetime(2020, 4, 7, 6, 18, 8)),                              # early AudioMoth: hex UNIX time
    ("site3-20240301T053000.flac", datetime(2024, 3, 1, 5, 30, 0)),
    ("20241399_999999.WAV", None),                                                  # not a date
    ("recording_12345678.wav", None), ("DEADBEEF.WAV", None), ("forest.flac", None),
])
def test_start_times_are_read_from_recorder_file_names(name: str, expected: datetime | None) -> None:
    assert parse_file_start(name) == expected


def write_tone_file(path: Path, seconds: float = 8.0, calls: list | None = None, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, planted_audio(seconds, RATE, calls or [], seed=seed), RATE, subtype="PCM_16",
             format="FLAC" if path.suffix.lower() == ".flac" else "WAV")


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two sites whose recorders wrote the same file names, a nested deployment folder, a note and a hidden file."""
    root = tmp_path / "archive"
    write_tone_file(root / "A" / "0301" / "20240301_053000.flac", calls=[(3, 1.0, 4.0)], seed=1)
    write_tone_file(root / "B" / "0301" / "20240301_053000.flac", calls=[(12, 4.0, 7.0)], seed=2)
    write_tone_file(root / "A" / "0302" / "20240302_060000.WAV", calls=[(7, 2.0, 5.0)], seed=3)
    write_tone_file(root / "top.flac", seed=4)
    (root / "A" / "notes.txt").write_text("not audio")
    (root / "A" / "0301" / "._20240301_053000.flac").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    return root


def test_walking_finds_audio_at_any_depth_with_include_and_exclude_globs(archive: Path) -> None:
    every = ["A/0301/20240301_053000.flac", "A/0302/20240302_060000.WAV", "B/0301/20240301_053000.flac",
             "top.flac"]
    assert walk(archive) == every
    assert walk(archive, include=["A/*"]) == every[:2]
    assert walk(archive, include=["*.WAV"]) == [every[1]]
    assert walk(archive, exclude=["*/0301/*", "top.*"]) == [every[1]]


def test_the_manifest_lists_sites_durations_and_times_and_reuses_unchanged_rows(archive: Path) -> None:
    manifest = build_manifest(archive)
    table = manifest.recordings
    assert table.site.tolist() == ["A", "A", "B", ""]
    assert np.allclose(table.seconds, 8.0) and set(table.sample_rate) == {RATE}
    assert table.file_start.iloc[1] == pd.Timestamp("2024-03-02 06:00:00") and pd.isna(table.file_start.iloc[3])
    assert manifest.failures.empty
    assert manifest_frame(manifest_rows(table)).equals(table)
    # an unchanged file keeps its row (no header read); a replaced one is read again
    stale = table.assign(seconds=[1.0, 1.0, 1.0, 1.0])
    write_tone_file(archive / "top.flac", seconds=3.0, seed=9)
    again = build_manifest(archive, previous=stale).recordings
    assert again.seconds.tolist() == [1.0, 1.0, 1.0, 3.0]


def test_unreadable_files_and_clashing_outputs_go_to_the_failures(archive: Path) -> None:
    (archive / "B" / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(100))
    write_tone_file(archive / "B" / "0301" / "20240301_053000.wav", seed=5)  # same outputs as the FLAC beside it
    manifest = build_manifest(archive)
    assert manifest.recordings.path.tolist() == ["A/0301/20240301_053000.flac", "A/0302/20240302_060000.WAV",
                                                 "B/0301/20240301_053000.flac", "top.flac"]
    failures = manifest.failures.set_index("file").error
    assert "unreadable audio" in failures[str(archive / "B" / "broken.wav")]
    assert "same name as" in failures[str(archive / "B" / "0301" / "20240301_053000.wav")]


def recordings_table(paths: list[str], seconds: float = 600.0) -> pd.DataFrame:
    return pd.DataFrame({"path": paths, "seconds": seconds})


def test_shards_hold_about_the_asked_hours_and_a_new_file_changes_only_its_own_shard() -> None:
    paths = [f"S{site}/{day:02d}/2024{day:04d}_{hour:02d}0000.WAV" for site in range(3) for day in range(1, 15)
             for hour in range(0, 24, 2)]  # 504 ten-minute files: 84 hours
    groups = shards(recordings_table(paths), hours=4.0)
    assert sum(groups.values(), []) == paths  # every file once, in path order
    sizes = [len(members) / 6 for members in groups.values()]  # hours per shard
    assert 12 <= len(groups) <= 40 and max(sizes) <= 8.0 and np.mean(sizes) == pytest.approx(84 / len(groups))
    for added in ("S1/07/20240007_050000.WAV", "S0/01/20240001_000000a.WAV", "S2/99/x.WAV"):
        regrouped = shards(recordings_table(sorted(paths + [added])), hours=4.0)
        changed = {name for name in set(groups) | set(regrouped) if groups.get(name) != regrouped.get(name)}
        holding = [name for name, members in regrouped.items() if added in members]
        # the shard the file joined changes; at most it splits there, so the shard after it is cut anew
        assert holding[0] in changed and len(changed - set(holding)) <= 2, (added, changed)
        unchanged = set(groups) - changed
        assert len(unchanged) >= len(groups) - 2
    # a file as long as the shard's hours ends its shard
    assert list(shards(recordings_table(paths[:3], seconds=3600.0), hours=1.0).values()) == [[p] for p in paths[:3]]


def test_detect_over_a_nested_archive_mirrors_paths_and_shards_give_the_one_job_result(
        archive: Path, models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(detect_args(models_dir, archive, out, "--quiet")) == 0
    for path in ("A/0301/20240301_053000", "B/0301/20240301_053000", "A/0302/20240302_060000", "top"):
        for suffix in (".detections.csv", ".selections.txt", ".audacity.txt", ".scores.parquet", ".done.json"):
            assert (out / f"{path}{suffix}").is_file(), path + suffix
    table = pd.read_parquet(out / "detections.parquet")
    assert tuple(table.columns) == ARCHIVE_DETECTION_COLUMNS
    found = {(row.path, row.species_id) for row in table.itertuples()}
    assert found == {("A/0301/20240301_053000.flac", 3), ("B/0301/20240301_053000.flac", 12),
                     ("A/0302/20240302_060000.WAV", 7)}
    seven = table[table.species_id == 7].iloc[0]
    assert seven.site == "A" and seven.start_time == pd.Timestamp("2024-03-02 06:00:00") + pd.Timedelta(
        seconds=seven.start)
    assert pd.read_csv(out / "detections.csv").shape == table.shape
    by_hour = pd.read_csv(out / "activity_by_hour.csv")
    assert set(zip(by_hour.site, by_hour.species_id, by_hour.hour)) == {("A", 3, 5), ("B", 12, 5), ("A", 7, 6)}
    assert (out / "activity.png").stat().st_size > 5000
    summary = pd.read_csv(out / "summary.csv")
    assert summary.recording.tolist() == ["A/0301/20240301_053000", "A/0302/20240302_060000",
                                          "B/0301/20240301_053000", "top"]

    # the same archive in three shards, each its own detect_recordings call into its own folder, then gathered
    manifest = build_manifest(archive)
    groups = shards(manifest.recordings, hours=1 / 3600)
    assert len(groups) == 4
    detector, options = build_detector(models_dir), DetectOptions(progress=False)
    sharded = tmp_path / "sharded"
    results = [detect_recordings(detector, archive, manifest.recordings[manifest.recordings.path.isin(members)],
                                 sharded, options, {}) for members in groups.values()]
    gathered = gather(manifest.failures, results, sharded, {})
    pd.testing.assert_frame_equal(gathered.detections, table)
    pd.testing.assert_frame_equal(pd.read_csv(sharded / "summary.csv"), summary)


def test_a_file_replaced_in_place_is_scored_again_and_the_others_are_not(archive: Path, models_dir: Path,
                                                                         tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(detect_args(models_dir, archive, out, "--quiet")) == 0
    assert "4 scored, 0 skipped" in capsys.readouterr().out
    write_tone_file(archive / "top.flac", calls=[(3, 2.0, 5.0)], seed=7)
    assert main(detect_args(models_dir, archive, out, "--quiet")) == 0
    assert "1 scored, 3 skipped" in capsys.readouterr().out
    assert pd.read_csv(out / "top.detections.csv").species_id.tolist() == [3]
    shutil.copy(archive / "top.flac", archive / "A" / "late.flac")  # added in a subfolder
    assert main(detect_args(models_dir, archive, out, "--quiet")) == 0
    assert "1 scored, 4 skipped" in capsys.readouterr().out


def test_a_job_killed_mid_archive_resumes_at_the_recording_it_was_scoring(archive: Path, models_dir: Path,
                                                                          tmp_path: Path, monkeypatch) -> None:
    manifest = build_manifest(archive)
    detector, options = build_detector(models_dir), DetectOptions(progress=False)
    score = Detector.score
    scored: list[str] = []

    def killed_on_the_third(self, info, *args, **kwargs):
        scored.append(Path(info.path).name)
        if len(scored) == 3:
            raise KeyboardInterrupt  # as a SIGINT/SIGTERM would stop the job half-way through this recording
        return score(self, info, *args, **kwargs)

    monkeypatch.setattr(Detector, "score", killed_on_the_third)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        detect_recordings(detector, archive, manifest.recordings, out, options, {})
    assert len(list(out.rglob("*.done.json"))) == 2
    monkeypatch.setattr(Detector, "score", score)
    result = detect_recordings(detector, archive, manifest.recordings, out, options, {})
    assert (result.report.skipped, result.report.scored) == (2, 2)
    assert len(result.summary) == 4 and len(list(out.rglob("*.done.json"))) == 4
