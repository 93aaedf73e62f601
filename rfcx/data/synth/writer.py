"""Plan, render and write a synthetic dataset in the Kaggle RFCx layout.

Everything random about *what* is in the dataset (recording ids, which calls go where, their bands, durations, SNRs,
background parameters) is planned in the parent process from the seed. Workers only turn a plan into samples, using
an RNG keyed by (seed, split, index), so the output is byte-identical whatever the number of workers or the order in
which they finish.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import fft as sp_fft
from tqdm import tqdm

from rfcx import __version__
from rfcx.constants import BOX_COLUMNS, N_SPECIES, RECORDING_SECONDS, SAMPLE_RATE, SPECIES_COLUMNS, SUBMISSION_COLUMNS
from rfcx.data.synth.background import BackgroundPlan, plan_background, render_background
from rfcx.data.synth.scales import SynthScale, get_scale
from rfcx.data.synth.species import (
    FREQ_JITTER,
    NOISE_BAND_PARAMS,
    SPECIES,
    Species,
    SongType,
    band_power,
    confuser_templates,
    render_call,
    rfft_freqs,
    scaled_params,
)

# Roles of planned calls. Only TP, FP (train) and TRUTH (test) end up in CSVs.
TP, FP, TRUTH, CONFUSER, DISTANT = "tp", "fp", "truth", "confuser", "distant"
#: Roles whose level is set against the background (distant calls are set against the background too, but faint).
FOREGROUND_ROLES = frozenset({TP, FP, TRUTH, CONFUSER})

# Independent RNG streams, so that e.g. adding test recordings never changes the train recordings.
_STREAM_IDS, _STREAM_ALLOCATION, _STREAM_PLAN, _STREAM_RENDER = 0, 1, 2, 3
_SPLIT_CODE = {"train": 0, "test": 1}

#: Foreground calls of the same band keep this much time (s) between them, so a box's surroundings are background.
TIME_MARGIN_S: float = 0.5
#: Distant calls in test recordings stay at least this far (dB) below the faintest planted call.
DISTANT_MARGIN_DB: float = 20.0
#: Background RMS level of a recording, dBFS: field recordings are quiet (and quiet noise makes smaller FLACs).
LEVEL_DBFS_RANGE: tuple[float, float] = (-45.0, -30.0)
#: The mix is scaled down further when needed so that its peak stays at or below this (no clipping).
MAX_PEAK: float = 0.9
#: Written into out_dir first; marks the folder as synth output so a rerun may overwrite it.
MARKER_NAME = ".rfcx-synth"
#: Written last, with the scale, seed and counts.
INFO_NAME = "synth_info.json"
N_SAMPLES = int(RECORDING_SECONDS * SAMPLE_RATE)


@dataclass(frozen=True)
class PlannedCall:
    """One sound planted in a recording. For confusers, species_id is the species whose band is imitated."""

    role: str
    species_id: int
    songtype_id: int
    family: str
    params: dict[str, float]
    t_min: float
    t_max: float
    f_min: float
    f_max: float
    snr_db: float
    lowpass_hz: float = 0.0

    def box_row(self, recording_id: str) -> tuple[str, int, int, float, float, float, float]:
        """The row in the competition's box format (BOX_COLUMNS order)."""
        return (recording_id, self.species_id, self.songtype_id, self.t_min, self.f_min, self.t_max, self.f_max)


@dataclass(frozen=True)
class RecordingPlan:
    """Everything needed to render one recording deterministically."""

    recording_id: str
    split: str
    render_key: tuple[int, ...]
    calls: tuple[PlannedCall, ...]
    background: BackgroundPlan
    level_dbfs: float

    def calls_with_role(self, role: str) -> list[PlannedCall]:
        """The planted calls of one role, in plan order."""
        return [c for c in self.calls if c.role == role]


@dataclass(frozen=True)
class DatasetPlan:
    """All recordings of a dataset, train first."""

    scale: SynthScale
    seed: int
    train: tuple[RecordingPlan, ...]
    test: tuple[RecordingPlan, ...]


@dataclass(frozen=True)
class SynthSummary:
    """What generate_dataset wrote."""

    n_train: int
    n_test: int
    n_tp: int
    n_fp: int
    out_dir: Path


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one purpose, keyed by integers (SeedSequence spawn keys)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# --------------------------------------------------------------------------------------------------------------
# Planning: who sings where
# --------------------------------------------------------------------------------------------------------------


def draw_recording_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n unique ids of 9 lowercase hex characters, like the competition's (e.g. 003bec244)."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        for value in rng.integers(0, 16**9, size=n - len(ids)):
            rid = f"{int(value):09x}"
            if rid not in seen:
                seen.add(rid)
                ids.append(rid)
    return ids


def allocate_tp_species(rng: np.random.Generator, scale: SynthScale) -> list[list[int]]:
    """Species of the tp calls of each train recording (empty list = fp-only recording).

    Rows are dealt evenly over species and spread so that a species' rows land in different recordings: tokens of
    one species are consecutive and slots are visited round by round (every tp recording's first slot, then every
    second slot, ...), then any remaining duplicate inside a recording is swapped away.
    """
    n_rec = scale.n_tp_recordings
    slots = _slots_per_recording(rng, n_rec, scale.n_tp, scale.max_tp_per_recording)
    counts = np.full(N_SPECIES, scale.n_tp // N_SPECIES)
    counts[rng.choice(N_SPECIES, scale.n_tp % N_SPECIES, replace=False)] += 1
    order = rng.permutation(N_SPECIES)
    tokens = np.repeat(order, counts[order])
    slot_owner = np.concatenate([rng.permutation(np.flatnonzero(slots > r)) for r in range(int(slots.max()))])
    per_recording: list[list[int]] = [[] for _ in range(n_rec)]
    for owner, species in zip(slot_owner, tokens, strict=True):
        per_recording[owner].append(int(species))
    _remove_duplicates(rng, per_recording)
    tp_recordings = rng.permutation(scale.n_train)[:n_rec]
    result: list[list[int]] = [[] for _ in range(scale.n_train)]
    for rec, species_list in zip(tp_recordings, per_recording, strict=True):
        result[int(rec)] = species_list
    return result


def _slots_per_recording(rng: np.random.Generator, n_rec: int, n_rows: int, max_per: int) -> np.ndarray:
    """How many tp calls each tp recording gets: at least one, at most max_per, n_rows in all."""
    if not n_rec <= n_rows <= n_rec * max_per:
        raise ValueError(f"cannot put {n_rows} tp rows into {n_rec} recordings with 1-{max_per} each")
    pool = np.repeat(np.arange(n_rec), max_per - 1)
    extra = pool[rng.choice(pool.size, n_rows - n_rec, replace=False)]
    return 1 + np.bincount(extra, minlength=n_rec)


def _remove_duplicates(rng: np.random.Generator, per_recording: list[list[int]]) -> None:
    """Swap species between recordings until no recording holds the same species twice (when possible)."""
    for i, species_list in enumerate(per_recording):
        for k, species in enumerate(species_list):
            if species_list.count(species) < 2:
                continue
            for j in rng.permutation(len(per_recording)):
                other = per_recording[j]
                swap = next((m for m, s in enumerate(other) if s not in species_list and species not in other), None)
                if j != i and swap is not None:
                    species_list[k], other[swap] = other[swap], species
                    break


def allocate_fp_counts(rng: np.random.Generator, scale: SynthScale, tp_species: list[list[int]]) -> np.ndarray:
    """Number of fp confusers per train recording: every recording without tp gets at least one."""
    counts = np.zeros(scale.n_train, dtype=int)
    fp_only = np.array([not s for s in tp_species])
    if fp_only.sum() > scale.n_fp:
        raise ValueError(f"scale {scale.name}: {fp_only.sum()} fp-only recordings but only {scale.n_fp} fp rows")
    counts[fp_only] = 1
    counts += rng.multinomial(scale.n_fp - int(fp_only.sum()), np.full(scale.n_train, 1.0 / scale.n_train))
    return counts


class _Layout:
    """Foreground events placed so far in one recording; keeps same-band events apart in time."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float, float, float]] = []

    def is_free(self, t0: float, t1: float, f0: float, f1: float) -> bool:
        """No placed event overlaps both this band (with 5% slack) and this time (with TIME_MARGIN_S slack)."""
        return not any(
            t0 < e1 + TIME_MARGIN_S and e0 < t1 + TIME_MARGIN_S and f0 < g1 * 1.05 and g0 < f1 * 1.05
            for e0, e1, g0, g1 in self.events
        )

    def place(self, rng: np.random.Generator, duration: float, band: tuple[float, float], overlap_p: float) -> float:
        """Pick a start time: sometimes overlapping an earlier event in time (never in band), else anywhere free."""
        lo, hi = 0.1, RECORDING_SECONDS - duration - 0.1
        if self.events and rng.random() < overlap_p:
            for _ in range(20):
                e0, e1, _, _ = self.events[rng.integers(len(self.events))]
                start = float(np.clip(rng.uniform(e0 - 0.6 * duration, e1 - 0.4 * duration), lo, hi))
                if self.is_free(start, start + duration, *band):
                    return self._add(start, duration, band)
        start = lo
        for _ in range(200):
            start = float(rng.uniform(lo, hi))
            if self.is_free(start, start + duration, *band):
                break
        return self._add(start, duration, band)

    def _add(self, start: float, duration: float, band: tuple[float, float]) -> float:
        self.events.append((start, start + duration, band[0], band[1]))
        return start


def _pick_songtype(rng: np.random.Generator, species: Species) -> SongType:
    """A song type, the main one (id 1) most often."""
    weights = np.array([s.weight for s in species.songtypes])
    return species.songtypes[int(rng.choice(len(weights), p=weights / weights.sum()))]


def _draw_shape(rng: np.random.Generator, species: Species, songtype: SongType) -> tuple[float, tuple[float, float]]:
    """Duration and band of one call: the species' ranges, the song type's shifts and a few % of jitter."""
    duration = rng.uniform(*species.duration) * songtype.duration_scale
    jitter = songtype.band_shift * (1.0 + rng.uniform(-FREQ_JITTER, FREQ_JITTER))
    return duration, (round(species.band[0] * jitter, 4), round(species.band[1] * jitter, 4))


def _call(role: str, species_id: int, songtype: SongType, family: str, params: dict[str, float], start: float,
          duration: float, band: tuple[float, float], snr_db: float, lowpass_hz: float = 0.0) -> PlannedCall:
    """A PlannedCall with times and bands rounded to what the CSVs hold, so boxes equal the rendered calls."""
    t_min = round(start, 4)
    return PlannedCall(role, species_id, songtype.songtype_id, family, params, t_min, round(t_min + duration, 4),
                       band[0], band[1], round(float(snr_db), 2), round(float(lowpass_hz), 1))


def plan_species_call(rng: np.random.Generator, layout: _Layout, species_id: int, role: str, snr_db: float,
                      overlap_p: float) -> PlannedCall:
    """A call of the species itself (tp in train, truth in test)."""
    species = SPECIES[species_id]
    songtype = _pick_songtype(rng, species)
    duration, band = _draw_shape(rng, species, songtype)
    start = layout.place(rng, duration, band, overlap_p)
    return _call(role, species_id, songtype, species.family, scaled_params(species, songtype), start, duration,
                 band, snr_db)


def plan_confuser(rng: np.random.Generator, layout: _Layout, species_id: int, role: str, snr_db: float,
                  overlap_p: float) -> PlannedCall:
    """A sound in species_id's band and duration range but with another pattern (another kind, or a noise band)."""
    species = SPECIES[species_id]
    songtype = _pick_songtype(rng, species)
    duration, band = _draw_shape(rng, species, songtype)
    templates = confuser_templates(species_id)
    template = templates[int(rng.integers(len(templates)))]
    if template is None:
        family, params = "buzz", dict(NOISE_BAND_PARAMS)
    else:
        family, params = SPECIES[template].family, dict(SPECIES[template].params)
    start = layout.place(rng, duration, band, overlap_p)
    return _call(role, species_id, songtype, family, params, start, duration, band, snr_db)


def plan_distant_calls(rng: np.random.Generator, scale: SynthScale) -> list[PlannedCall]:
    """Faint, low-passed calls of random species anywhere in the recording (never listed in any CSV)."""
    calls = []
    for _ in range(rng.poisson(scale.distant_calls_mean)):
        species = SPECIES[int(rng.integers(N_SPECIES))]
        songtype = _pick_songtype(rng, species)
        duration, band = _draw_shape(rng, species, songtype)
        start = rng.uniform(0.1, RECORDING_SECONDS - duration - 0.1)
        calls.append(_call(DISTANT, species.species_id, songtype, species.family, scaled_params(species, songtype),
                           start, duration, band, rng.uniform(*scale.distant_snr_db_range), rng.uniform(1500, 4000)))
    return calls


def _snr_drawer(rng: np.random.Generator, scale: SynthScale) -> Callable[[], float]:
    """Per-recording SNR (so whole recordings can be faint) plus +-3 dB per call, kept inside the scale's range."""
    lo, hi = scale.snr_db_range
    base = rng.uniform(lo, hi)
    return lambda: float(np.clip(base + rng.uniform(-3.0, 3.0), lo, hi))


def plan_train_recording(seed: int, index: int, recording_id: str, scale: SynthScale, tp_species: Sequence[int],
                         n_fp: int) -> RecordingPlan:
    """A train recording: its tp calls, n_fp confusers (listed as fp for the imitated species), background."""
    rng = _rng(seed, _STREAM_PLAN, _SPLIT_CODE["train"], index)
    snr, layout = _snr_drawer(rng, scale), _Layout()
    calls = [plan_species_call(rng, layout, s, TP, snr(), scale.overlap_probability) for s in tp_species]
    calls += [plan_confuser(rng, layout, int(rng.integers(N_SPECIES)), FP, snr(), scale.overlap_probability)
              for _ in range(n_fp)]
    return _finish_plan(rng, seed, "train", index, recording_id, scale, calls)


def plan_test_recording(seed: int, index: int, recording_id: str, scale: SynthScale) -> RecordingPlan:
    """A test recording: 1-3 planted species (1-2 calls each; a few recordings none), unlisted confusers."""
    rng = _rng(seed, _STREAM_PLAN, _SPLIT_CODE["test"], index)
    snr, layout = _snr_drawer(rng, scale), _Layout()
    n_species = 0 if rng.random() < scale.empty_test_fraction else int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    calls = [plan_species_call(rng, layout, int(s), TRUTH, snr(), scale.overlap_probability)
             for s in rng.choice(N_SPECIES, n_species, replace=False)
             for _ in range(1 if rng.random() < 0.75 else 2)]
    calls += [plan_confuser(rng, layout, int(rng.integers(N_SPECIES)), CONFUSER, snr(), scale.overlap_probability)
              for _ in range(rng.poisson(scale.test_confusers_mean))]
    return _finish_plan(rng, seed, "test", index, recording_id, scale, calls)


def _finish_plan(rng: np.random.Generator, seed: int, split: str, index: int, recording_id: str, scale: SynthScale,
                 calls: list[PlannedCall]) -> RecordingPlan:
    """Add the background, distant calls and output level shared by both splits."""
    background = plan_background(rng, scale)
    calls += plan_distant_calls(rng, scale)
    return RecordingPlan(recording_id, split, (seed, _STREAM_RENDER, _SPLIT_CODE[split], index), tuple(calls),
                         background, round(float(rng.uniform(*LEVEL_DBFS_RANGE)), 2))


def plan_dataset(scale: str | SynthScale = "demo", seed: int = 0) -> DatasetPlan:
    """Plan every recording of a dataset (cheap: no audio)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    scale = get_scale(scale) if isinstance(scale, str) else scale
    ids = draw_recording_ids(_rng(seed, _STREAM_IDS), scale.n_train + scale.n_test)
    allocation_rng = _rng(seed, _STREAM_ALLOCATION)
    tp_species = allocate_tp_species(allocation_rng, scale)
    fp_counts = allocate_fp_counts(allocation_rng, scale, tp_species)
    train = tuple(plan_train_recording(seed, i, ids[i], scale, tp_species[i], int(fp_counts[i]))
                  for i in range(scale.n_train))
    test = tuple(plan_test_recording(seed, j, ids[scale.n_train + j], scale) for j in range(scale.n_test))
    return DatasetPlan(scale, seed, train, test)


# --------------------------------------------------------------------------------------------------------------
# Rendering: plan -> samples (runs in worker processes)
# --------------------------------------------------------------------------------------------------------------


def _samples(call: PlannedCall) -> tuple[int, int]:
    """First sample and length of a call, from the (rounded) box times."""
    start = int(round(call.t_min * SAMPLE_RATE))
    return start, min(int(round(call.t_max * SAMPLE_RATE)), N_SAMPLES) - start


def _snr_gain(call_audio: np.ndarray, background: np.ndarray, call: PlannedCall) -> float:
    """Gain that puts the call snr_db above the local background, both measured inside the call's box."""
    noise = band_power(background, call.f_min, call.f_max)
    power = band_power(call_audio, call.f_min, call.f_max)
    return float(np.sqrt(10.0 ** (call.snr_db / 10.0) * noise / power)) if power > 0 else 0.0


def _lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Gentle 4th-order-like low-pass: distance removes high frequencies first."""
    gain = 1.0 / np.sqrt(1.0 + (rfft_freqs(x.size) / cutoff_hz) ** 4)
    return sp_fft.irfft(sp_fft.rfft(x) * gain, n=x.size)


def render_recording(plan: RecordingPlan) -> np.ndarray:
    """Render a recording to int16 PCM: background, foreground calls at their SNRs, faint distant calls."""
    rng = np.random.default_rng(np.random.SeedSequence(plan.render_key[0], spawn_key=plan.render_key[1:]))
    background = render_background(plan.background, rng, N_SAMPLES)
    mix = background.copy()
    planted_powers = []
    for call in (c for c in plan.calls if c.role in FOREGROUND_ROLES):
        start, n = _samples(call)
        audio = render_call(call.family, n, call.f_min, call.f_max, call.params, rng)
        audio *= _snr_gain(audio, background[start : start + n], call)
        mix[start : start + n] += audio.astype(np.float32)
        if call.role == TRUTH:
            planted_powers.append(float(np.mean(audio**2)))
    max_distant_power = min(planted_powers, default=np.inf) * 10.0 ** (-DISTANT_MARGIN_DB / 10.0)
    for call in plan.calls_with_role(DISTANT):
        start, n = _samples(call)
        audio = render_call(call.family, n, call.f_min, call.f_max, call.params, rng)
        audio = _lowpass(audio * _snr_gain(audio, background[start : start + n], call), call.lowpass_hz)
        power = float(np.mean(audio**2))
        if power > max_distant_power:
            audio *= np.sqrt(max_distant_power / power)
        mix[start : start + n] += audio.astype(np.float32)
    return _to_pcm16(mix, background, plan.level_dbfs)


def _to_pcm16(mix: np.ndarray, background: np.ndarray, level_dbfs: float) -> np.ndarray:
    """Scale so the background sits at level_dbfs (peak capped at MAX_PEAK: never clipping), round to int16.

    The rounding is done here rather than by libsndfile so that the conversion is explicit and deterministic.
    """
    rms = float(np.sqrt(np.mean(np.square(background, dtype=np.float64))))
    top = float(np.max(np.abs(mix)))
    gain = min(10.0 ** (level_dbfs / 20.0) / rms, MAX_PEAK / top) if top > 0 else 1.0
    return np.round(mix.astype(np.float64) * (gain * 32767.0)).astype(np.int16)


def _render_job(job: tuple[RecordingPlan, str]) -> str:
    """Worker entry point: render one recording and write its FLAC atomically."""
    plan, path = job
    write_flac(Path(path), render_recording(plan))
    return plan.recording_id


def write_flac(path: Path, pcm: np.ndarray) -> None:
    """Write 16-bit mono FLAC via a temporary name, so an interrupted run never leaves a truncated file."""
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------------------------------------------


def _sort_key(row: tuple) -> tuple:
    """CSV row order: recording_id, t_min, species_id (then the rest, so ties are still deterministic)."""
    return (row[0], row[3], row[1], row[2], row[4], row[5], row[6])


def box_rows(recordings: Iterable[RecordingPlan], role: str) -> list[tuple]:
    """Boxes of all calls with this role, sorted."""
    return sorted((c.box_row(r.recording_id) for r in recordings for c in r.calls_with_role(role)), key=_sort_key)


def format_box_row(row: tuple) -> str:
    """One CSV line with fixed float formatting (byte-identical output)."""
    rid, species, songtype, t_min, f_min, t_max, f_max = row
    return f"{rid},{species},{songtype},{t_min:.4f},{f_min:.4f},{t_max:.4f},{f_max:.4f}"


def truth_matrix(test: Sequence[RecordingPlan]) -> list[tuple[str, list[int]]]:
    """Per test recording (sorted by id): 1 for each species with a planted (truth) call, else 0."""
    rows = []
    for rec in sorted(test, key=lambda r: r.recording_id):
        present = {c.species_id for c in rec.calls_with_role(TRUTH)}
        rows.append((rec.recording_id, [int(s in present) for s in range(N_SPECIES)]))
    return rows


def write_text_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write lines to a temporary file, then rename it into place: readers never see half a CSV."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def write_tables(out_dir: Path, plan: DatasetPlan) -> tuple[int, int]:
    """Write train_tp, train_fp, sample_submission, test_truth and test_boxes CSVs; return (n_tp, n_fp)."""
    header = ",".join(BOX_COLUMNS)
    tables = {"train_tp.csv": box_rows(plan.train, TP), "train_fp.csv": box_rows(plan.train, FP),
              "test_boxes.csv": box_rows(plan.test, TRUTH)}
    for name, rows in tables.items():
        write_text_atomic(out_dir / name, [header, *map(format_box_row, rows)])
    truth = truth_matrix(plan.test)
    zeros = ",".join(["0.0"] * len(SPECIES_COLUMNS))
    write_text_atomic(out_dir / "sample_submission.csv",
                      [",".join(SUBMISSION_COLUMNS), *(f"{rid},{zeros}" for rid, _ in truth)])
    write_text_atomic(out_dir / "test_truth.csv",
                      [",".join(SUBMISSION_COLUMNS), *(f"{rid},{','.join(map(str, v))}" for rid, v in truth)])
    return len(tables["train_tp.csv"]), len(tables["train_fp.csv"])


def prepare_out_dir(out_dir: Path, plan: DatasetPlan) -> None:
    """Create out_dir, refusing a non-empty folder that is not ours; drop stale files of a previous synth run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"refusing to write synthetic data into {out_dir}: it is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER_NAME).exists():
        raise ValueError(f"refusing to write synthetic data into {out_dir}: the folder is not empty and is not a "
                         f"previous rfcx synth output (no {MARKER_NAME} file); choose an empty or new folder")
    for split, recordings in (("train", plan.train), ("test", plan.test)):
        folder = out_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        keep = {f"{r.recording_id}.flac" for r in recordings}
        for stale in folder.iterdir():
            if stale.is_file() and stale.name not in keep and (stale.suffix in {".flac", ".tmp"}):
                stale.unlink()
    (out_dir / INFO_NAME).unlink(missing_ok=True)  # rewritten last: its presence means "complete"
    (out_dir / MARKER_NAME).write_text("rfcx.synth output folder\n", encoding="utf-8")


def _render_all(jobs: list[tuple[RecordingPlan, str]], workers: int, progress: bool) -> None:
    """Render recordings, in a process pool when workers > 1, with an optional progress bar."""
    if workers <= 1:
        with tqdm(total=len(jobs), desc="synth", unit="rec", disable=not progress) as bar:
            for job in jobs:
                _render_job(job)
                bar.update()
        return
    # The pool is started before the progress bar so that no tqdm thread exists when workers are forked.
    with _pool_context().Pool(processes=workers) as pool:
        with tqdm(total=len(jobs), desc="synth", unit="rec", disable=not progress) as bar:
            for _ in pool.imap_unordered(_render_job, jobs, chunksize=1):
                bar.update()


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux: no re-import of __main__ in workers (spawn would re-run an unguarded caller script, e.g. a
    Snakemake `script:`) and no start-up cost; spawn elsewhere (fork is unsafe on macOS)."""
    fork_ok = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if fork_ok else "spawn")


def generate_dataset(out_dir: str | Path, scale: str = "demo", seed: int = 0, workers: int | None = None,
                     progress: bool = True) -> SynthSummary:
    """Generate a synthetic dataset in the Kaggle RFCx layout into out_dir (see docs/synth.md).

    Byte-identical for a given (scale, seed) whatever `workers` is; workers=None uses all CPU cores.
    """
    plan = plan_dataset(scale, seed)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    prepare_out_dir(out, plan)
    jobs = [(rec, str(out / split / f"{rec.recording_id}.flac"))
            for split, recs in (("train", plan.train), ("test", plan.test)) for rec in recs]
    _render_all(jobs, min(workers, len(jobs)), progress)
    n_tp, n_fp = write_tables(out, plan)
    summary = SynthSummary(len(plan.train), len(plan.test), n_tp, n_fp, out)
    info = {"generator": "rfcx.synth", "version": __version__, "seed": seed, "scale": asdict(plan.scale),
            "counts": {"n_train": summary.n_train, "n_test": summary.n_test, "n_tp": n_tp, "n_fp": n_fp}}
    write_text_atomic(out / INFO_NAME, [json.dumps(info, indent=2, sort_keys=True)])
    return summary
