"""Behaviour of rfcx.data.synth: a deterministic synthetic dataset in exactly the Kaggle RFCx layout.

The tiny scale is generated once per module (about 10 s on 2 cores); everything else reads it.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal

from rfcx.constants import BOX_COLUMNS, N_SPECIES, RECORDING_SECONDS, SAMPLE_RATE, SUBMISSION_COLUMNS
from rfcx.data.synth import SCALES, generate_dataset, plan_dataset
from rfcx.data.synth.species import (
    BAND_LIMITS,
    SIMILAR_BAND_IOU,
    SPECIES,
    confuser_templates,
    duration_extremes,
    frequency_extremes,
    log_band_overlap,
)
from rfcx.data.synth.writer import MARKER_NAME, TP, box_rows, prepare_out_dir, render_recording

TINY = SCALES["tiny"]
BOX_CSVS = ("train_tp.csv", "train_fp.csv", "test_boxes.csv")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate_dataset(out, "tiny", seed=0, workers=2, progress=False)
    return out


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def header(path: Path) -> tuple[str, ...]:
    with path.open() as f:
        return tuple(next(csv.reader(f)))


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files_whatever_the_worker_count(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_dataset(again, "tiny", seed=0, workers=1, progress=False)
    first, second = all_files(tiny), all_files(again)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_different_seed_gives_different_boxes_and_audio(tiny: Path) -> None:
    other = plan_dataset("tiny", seed=1)
    other_tp = [r[0] for r in box_rows(other.train, TP)]
    assert other_tp != pd.read_csv(tiny / "train_tp.csv")["recording_id"].tolist()
    rec = other.train[0]
    ours = next((tiny / "train").glob("*.flac"))
    assert not np.array_equal(render_recording(rec), sf.read(ours, dtype="int16")[0])


# ---------------------------------------------------------------------------------------------- layout


def test_audio_is_60s_mono_48k_pcm16_flac_readable_by_soundfile_and_librosa(tiny: Path) -> None:
    flacs = sorted(tiny.glob("t*/*.flac"))
    assert len(flacs) == TINY.n_train + TINY.n_test
    for path in flacs:
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", SAMPLE_RATE, 1)
        assert info.frames == int(RECORDING_SECONDS * SAMPLE_RATE)
    y, sr = librosa.load(flacs[0], sr=None)
    assert sr == SAMPLE_RATE and y.shape == (int(RECORDING_SECONDS * SAMPLE_RATE),)


def test_audio_never_clips(tiny: Path) -> None:
    for path in tiny.glob("t*/*.flac"):
        pcm = sf.read(path, dtype="int16")[0]
        assert np.abs(pcm.astype(int)).max() <= round(0.9 * 32767)


def test_recording_ids_look_like_the_competitions_and_are_unique(tiny: Path) -> None:
    stems = [p.stem for p in tiny.glob("t*/*.flac")]
    assert all(re.fullmatch(r"[0-9a-f]{9}", s) for s in stems)
    assert len(set(stems)) == len(stems)


def test_csv_columns_match_the_competition(tiny: Path) -> None:
    for name in BOX_CSVS:
        assert header(tiny / name) == BOX_COLUMNS
    assert header(tiny / "sample_submission.csv") == SUBMISSION_COLUMNS
    assert header(tiny / "test_truth.csv") == SUBMISSION_COLUMNS


def test_sample_submission_has_one_zero_row_per_test_recording_sorted(tiny: Path) -> None:
    sub = pd.read_csv(tiny / "sample_submission.csv", dtype={"recording_id": str})
    test_ids = sorted(p.stem for p in (tiny / "test").glob("*.flac"))
    assert sub["recording_id"].tolist() == test_ids
    assert (sub.drop(columns="recording_id").to_numpy() == 0.0).all()


def test_every_train_recording_is_listed_and_some_only_in_train_fp(tiny: Path) -> None:
    tp = set(pd.read_csv(tiny / "train_tp.csv", dtype={"recording_id": str})["recording_id"])
    fp = set(pd.read_csv(tiny / "train_fp.csv", dtype={"recording_id": str})["recording_id"])
    train = {p.stem for p in (tiny / "train").glob("*.flac")}
    assert tp | fp == train
    assert fp - tp


def test_csv_rows_are_sorted_by_recording_time_species(tiny: Path) -> None:
    for name in BOX_CSVS:
        df = pd.read_csv(tiny / name, dtype={"recording_id": str})
        keys = list(zip(df.recording_id, df.t_min, df.species_id, strict=True))
        assert keys == sorted(keys)


# ---------------------------------------------------------------------------------------------- boxes


def test_tp_boxes_are_inside_the_recording_and_every_species_meets_the_tiny_minimum(tiny: Path) -> None:
    tp = pd.read_csv(tiny / "train_tp.csv", dtype={"recording_id": str})
    assert len(tp) == TINY.n_tp
    assert ((tp.t_min >= 0) & (tp.t_max <= RECORDING_SECONDS) & (tp.t_min < tp.t_max)).all()
    assert ((tp.f_min >= 0) & (tp.f_max <= SAMPLE_RATE / 2) & (tp.f_min < tp.f_max)).all()
    assert tp.species_id.between(0, N_SPECIES - 1).all() and set(tp.songtype_id) <= {1, 2, 4}
    per_species = tp.groupby("species_id").agg(rows=("t_min", "size"), recordings=("recording_id", "nunique"))
    assert len(per_species) == N_SPECIES
    assert (per_species.rows >= 3).all() and (per_species.recordings >= TINY.min_recordings_per_species).all()
    assert len(pd.read_csv(tiny / "train_fp.csv")) == TINY.n_fp


def box_contrast(row: pd.Series, stft: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Mean STFT power inside the box over that in the same band just before/after it (the quieter side)."""
    freqs, times, power = stft
    band = (freqs >= row.f_min) & (freqs <= row.f_max)
    width = min(row.t_max - row.t_min, 0.5)

    def density(t0: float, t1: float) -> float:
        sel = (times >= t0) & (times <= t1)
        return float(power[np.ix_(band, sel)].mean()) if sel.any() and t0 >= 0 and t1 <= RECORDING_SECONDS else np.inf

    outside = min(density(row.t_min - 0.1 - width, row.t_min - 0.1), density(row.t_max + 0.1, row.t_max + 0.1 + width))
    return density(row.t_min, row.t_max) / outside


def test_tp_boxes_sit_on_the_calls(tiny: Path) -> None:
    tp = pd.read_csv(tiny / "train_tp.csv", dtype={"recording_id": str})
    contrasts = []
    for rid, rows in tp.groupby("recording_id"):
        audio = sf.read(tiny / "train" / f"{rid}.flac")[0]
        f, t, spec = signal.stft(audio, SAMPLE_RATE, nperseg=2048, noverlap=1536)
        contrasts += [box_contrast(row, (f, t, np.abs(spec) ** 2)) for row in rows.itertuples()]
    contrasts = np.array(contrasts)
    # The faintest calls are planted at -5 dB SNR (ratio 1.32); typical ones are far above their surroundings.
    assert contrasts.min() > 1.1
    assert np.median(contrasts) > 4.0


def test_test_truth_says_present_exactly_when_a_test_box_exists(tiny: Path) -> None:
    truth = pd.read_csv(tiny / "test_truth.csv", dtype={"recording_id": str}).set_index("recording_id")
    boxes = pd.read_csv(tiny / "test_boxes.csv", dtype={"recording_id": str})
    expected = defaultdict(set)
    for row in boxes.itertuples():
        expected[row.recording_id].add(row.species_id)
    assert set(truth.to_numpy().ravel()) <= {0, 1}
    for rid, row in truth.iterrows():
        assert {int(c[1:]) for c in truth.columns if row[c] == 1} == expected[rid]
    assert truth.to_numpy().sum() > 0


# ---------------------------------------------------------------------------------------------- output folder


def test_a_non_empty_foreign_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        generate_dataset(tmp_path, "tiny", progress=False)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_a_previous_synth_output_may_be_overwritten_and_loses_stale_recordings(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_text("")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "000000000.flac").write_bytes(b"stale")
    prepare_out_dir(tmp_path, plan_dataset("tiny", 0))
    assert not (tmp_path / "train" / "000000000.flac").exists()


def test_unknown_scale_and_negative_seed_are_refused_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny"):
        generate_dataset(tmp_path / "x", "huge", progress=False)
    with pytest.raises(ValueError, match="seed"):
        generate_dataset(tmp_path / "x", "tiny", seed=-1, progress=False)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- species catalogue


def test_species_calls_stay_inside_the_mel_range_and_duration_limits() -> None:
    lo, hi = frequency_extremes()
    assert BAND_LIMITS[0] <= lo and hi <= BAND_LIMITS[1]
    shortest, longest = duration_extremes()
    assert 0.3 <= shortest and longest <= 6.0
    assert all(1 <= len(s.songtypes) <= 3 and s.songtypes[0].songtype_id == 1 for s in SPECIES)


def test_some_species_share_a_band_and_differ_only_by_pattern() -> None:
    shared = [(a.species_id, b.species_id) for a in SPECIES for b in SPECIES
              if a.species_id < b.species_id and a.band == b.band]
    assert {(1, 2), (3, 4), (5, 6), (10, 15), (10, 22), (15, 22)} <= set(shared)


def test_confusers_never_imitate_a_species_of_the_same_kind_in_a_similar_band() -> None:
    for species in SPECIES:
        templates = confuser_templates(species.species_id)
        assert templates
        for t in templates:
            if t is None:
                continue
            look_alikes = [s for s in SPECIES if s.kind == SPECIES[t].kind
                           and log_band_overlap(s.band, species.band) > SIMILAR_BAND_IOU]
            assert look_alikes == []


def test_scales_have_the_documented_counts() -> None:
    demo, full = SCALES["demo"], SCALES["full"]
    assert (demo.n_train, demo.n_test, demo.n_tp, demo.n_fp) == (200, 60, 288, 600)
    assert (full.n_train, full.n_test, full.n_tp, full.n_fp) == (4727, 1992, 1216, 7781)
    assert SCALES["hard"].difficulty > demo.difficulty and SCALES["hard"].n_tp == demo.n_tp
