"""Build a REAL-AUDIO benchmark dataset in the Kaggle RFCx layout.

Real animal calls (birds, frogs, insects from public recordings listed in sources.csv) are planted into real
soundscapes at random times and SNRs; each planted call's box comes from where it was put (time) and from its own
spectrum (frequency). Unlike `rfcx synth`, nothing is synthesised, so a model that only learned the synthetic call
shapes gets no free ride here.

    python benchmarks/realaudio/build.py --out DIR [--cache DIR] [--seed 0] [--train 300] [--test 120]

Every source is verified against its sha256 in sources.csv before use (downloaded once from its pinned
raw.githubusercontent.com URL unless --cache holds it). The output is deterministic from --seed: everything random is
planned in the parent process; workers only render plans.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rwave import find_waves, read_rdata  # noqa: E402

HERE = Path(__file__).resolve().parent
SOURCES_CSV = HERE / "sources.csv"
SOURCE_COLUMNS = ("name", "kind", "species", "repo", "commit", "path", "member", "crops", "url", "licence",
                  "licence_source", "sha256", "seconds")
BOX_COLUMNS = ("recording_id", "species_id", "songtype_id", "t_min", "f_min", "t_max", "f_max")
N_SPECIES = 24
#: species_id -> target species (the `species` of the call rows in sources.csv); ids 10-23 never occur
TARGET_SPECIES = ("Anaxyrus cognatus", "Poecile rufescens", "Sayornis nigricans", "Myiopsitta monachus",
                  "Gryllus campestris", "Phaethornis longirostris", "Seiurus aurocapilla", "Setophaga townsendi",
                  "Zonotrichia leucophrys", "spinetail (scikit-maad label SP)")
SR = 48_000
SECONDS = 60.0
N_SAMPLES = int(SR * SECONDS)
MARKER = ".rfcx-realaudio"

# Segmentation of source clips into single calls.
N_FFT, HOP = 1024, 256
ACTIVE_DB = 15.0          # a frame is active within this many dB of the clip's loudest frame (noise removed)
MERGE_GAP_S = 0.25        # active runs closer than this are one call
MIN_CALL_S, MAX_CALL_S = 0.08, 4.0
PAD_S = 0.03
BAND_QUANTILES = (0.05, 0.95)
MASK_DB = 8.0
HIGHPASS_HZ = 200.0
MIN_BAND_HZ = 150.0

# Mixing.
SNR_DB = (-3.0, 15.0)
LEVEL_DBFS = (-45.0, -30.0)
MAX_PEAK = 0.9
CROSSFADE_S = 0.05
TRAIN_FRACTION = 0.65       # of each species' distinct calls; test gets the rest
BOUT_GAP_S = 1.0            # calls of one clip closer than this form one bout, split between train/test only if need be


@dataclass(frozen=True)
class Source:
    """One row of sources.csv."""

    name: str
    kind: str
    species: str
    repo: str
    commit: str
    path: str
    member: str
    crops: str
    url: str
    licence: str
    licence_source: str
    sha256: str
    seconds: str


@dataclass
class Call:
    """One call (or distractor sound) cut from a source: band-limited samples at 48 kHz and its band."""

    source: str
    unit: str            # the source file or R object it came from: test takes whole units when it can
    start_s: float       # where it was cut in that unit, for sources_used.json
    samples: np.ndarray = field(repr=False)
    f_min: float
    f_max: float

    @property
    def key(self) -> str:
        return f"{self.unit}@{self.start_s:.2f}"

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.samples) / SR


@dataclass(frozen=True)
class Placed:
    """A call put into a recording. role: tp | fp (train boxes), truth (test labels), distractor (unlabelled)."""

    role: str
    species_id: int
    pool: str
    index: int
    t_min: float
    t_max: float
    f_min: float
    f_max: float
    snr_db: float


@dataclass(frozen=True)
class RecordingPlan:
    recording_id: str
    split: str
    background: tuple[tuple[int, int, int], ...]   # (soundscape piece, offset, n samples), concatenated
    level_dbfs: float
    calls: tuple[Placed, ...]


# ------------------------------------------------------------------------------------------------------------------
# Sources: fetch, verify, decode
# ------------------------------------------------------------------------------------------------------------------


def read_sources(path: Path = SOURCES_CSV) -> list[Source]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [Source(**row) for row in csv.DictReader(handle)]


def fetch_bytes(source: Source, cache: Path | None) -> bytes:
    """The source file's bytes, from the cache (by sha256 or name) or its pinned URL; always sha256-verified."""
    candidates = [cache / source.sha256, cache / source.name, cache / Path(source.path).name] if cache else []
    hit = next((p for p in candidates if p.is_file()), None)
    if hit is not None:
        data = hit.read_bytes()
    else:
        with urllib.request.urlopen(source.url, timeout=60) as response:
            data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        where = hit if hit is not None else source.url
        raise SystemExit(f"sha256 mismatch for source {source.name!r} ({where}): got {digest}, "
                         f"sources.csv says {source.sha256}")
    if hit is None and cache is not None:  # only verified bytes are kept
        cache.mkdir(parents=True, exist_ok=True)
        (cache / source.sha256).write_bytes(data)
    return data


def to_48k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at 48 kHz (polyphase resampling keeps it fast and alias-free)."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = samples.astype(np.float64)
    if rate != SR:
        g = np.gcd(SR, rate)
        samples = signal.resample_poly(samples, SR // g, rate // g)
    return (samples - samples.mean()).astype(np.float32)


def decode_source(source: Source, data: bytes) -> list[np.ndarray]:
    """Every clip of one source at 48 kHz: one per R Wave object (R data files) or the whole file, then cropped."""
    suffix = Path(source.path).suffix.lower()
    if suffix in (".rda", ".rdata"):
        waves = [(p, x, r) for p, x, r in find_waves(read_rdata(data)) if not source.member or p == source.member]
        clips = [to_48k(x, r) for _, x, r in waves]
    else:
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except sf.LibsndfileError:
            import librosa  # mp3 and friends that libsndfile cannot read
            samples, rate = librosa.load(io.BytesIO(data), sr=None, mono=True)
        clips = [to_48k(samples, rate)]
    if not clips:
        raise SystemExit(f"source {source.name!r}: no audio found in {source.path}")
    return clips


def crop_spans(clip: np.ndarray, crops: str) -> list[tuple[int, int]]:
    """Sample spans of 't0-t1;t0-t1' (seconds); no crops means the whole clip."""
    if not crops:
        return [(0, len(clip))]
    spans = [tuple(float(v) for v in part.split("-")) for part in crops.split(";")]
    return [(int(t0 * SR), min(int(t1 * SR), len(clip))) for t0, t1 in spans]


def highpass(clip: np.ndarray) -> np.ndarray:
    """Remove wind and handling rumble below HIGHPASS_HZ: it would otherwise stretch every band down to 0 Hz."""
    sos = signal.butter(4, HIGHPASS_HZ, "highpass", fs=SR, output="sos")
    return signal.sosfiltfilt(sos, clip).astype(np.float32)


# ------------------------------------------------------------------------------------------------------------------
# Segmentation: one clip -> calls with bands
# ------------------------------------------------------------------------------------------------------------------


def noise_floor(clip: np.ndarray) -> np.ndarray:
    """Per-frequency noise power: the 20th percentile over time of the whole source clip (not just a crop)."""
    _, _, spec = signal.stft(clip, fs=SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None, padded=True)
    power = np.abs(spec) ** 2
    floor = np.percentile(power, 20, axis=1, keepdims=True) if power.shape[1] >= 10 else power.min(1, keepdims=True)
    return floor + np.median(floor) * 1e-3 + 1e-20


def excess_power(clip: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """STFT power of the bins clearly above their noise floor (20th percentile over time), and the bin frequencies.

    Only bins more than MASK_DB over the floor count: fluctuating low-frequency rumble otherwise outweighs the call
    and drags the band down to 0 Hz.
    """
    freqs, _, spec = signal.stft(clip, fs=SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None, padded=True)
    power = np.abs(spec) ** 2
    return np.where(power > floor * 10 ** (MASK_DB / 10), power - floor, 0.0), freqs


def active_runs(envelope: np.ndarray) -> list[tuple[int, int]]:
    """Frame runs within ACTIVE_DB of the peak, with short gaps merged (the energy envelope trims silence)."""
    if envelope.max() <= 0:
        return []
    active = envelope > envelope.max() * 10 ** (-ACTIVE_DB / 10)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))
    merged: list[list[int]] = []
    gap = int(MERGE_GAP_S * SR / HOP)
    for start, stop in runs:
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    return [(a, b) for a, b in merged]


def split_long(start: int, stop: int, max_frames: int) -> list[tuple[int, int]]:
    """Continuous choruses (toads, crickets) are cut into pieces no longer than MAX_CALL_S."""
    n = max(1, int(np.ceil((stop - start) / max_frames)))
    bounds = np.linspace(start, stop, n + 1).astype(int)
    return list(zip(bounds[:-1], bounds[1:]))


def band_of(excess: np.ndarray, freqs: np.ndarray, a: int, b: int) -> tuple[float, float]:
    """5th-95th percentile of the call's excess power over frequency, widened to at least MIN_BAND_HZ."""
    profile = excess[:, a:b].sum(axis=1)
    cumulative = np.cumsum(profile) / max(profile.sum(), 1e-30)
    lo = float(freqs[np.searchsorted(cumulative, BAND_QUANTILES[0])])
    hi = float(freqs[min(np.searchsorted(cumulative, BAND_QUANTILES[1]), len(freqs) - 1)])
    if hi - lo < MIN_BAND_HZ:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_BAND_HZ / 2, mid + MIN_BAND_HZ / 2
    return max(lo, 0.0), min(hi, SR / 2)


def bandpass(clip: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Keep only the call's band (plus a soft 15% skirt): the source's own noise must not leak outside the box."""
    spectrum = np.fft.rfft(clip)
    freqs = np.fft.rfftfreq(len(clip), 1 / SR)
    lo_edge, hi_edge = lo * 0.85, min(hi * 1.15, SR / 2)
    gain = np.clip(np.minimum((freqs - lo_edge) / max(lo - lo_edge, 1.0), (hi_edge - freqs) / max(hi_edge - hi, 1.0)),
                   0.0, 1.0)
    out = np.fft.irfft(spectrum * np.sin(gain * np.pi / 2) ** 2, n=len(clip))
    fade = min(int(0.01 * SR), len(out) // 4)
    ramp = np.linspace(0.0, 1.0, fade)
    out[:fade] *= ramp
    out[len(out) - fade:] *= ramp[::-1]
    return out.astype(np.float32)


def segment(clip: np.ndarray, floor: np.ndarray, source: str, unit: str, offset_s: float = 0.0) -> list[Call]:
    """Cut a clip into its calls: active parts of the energy envelope, each with its own band."""
    excess, freqs = excess_power(clip, floor)
    max_frames, min_frames, pad = (int(s * SR / HOP) for s in (MAX_CALL_S, MIN_CALL_S, PAD_S))
    calls = []
    for run in active_runs(excess.sum(axis=0)):
        for a, b in split_long(*run, max_frames):
            if b - a < min_frames:
                continue
            lo, hi = band_of(excess, freqs, a, b)
            start, stop = max(0, (a - pad) * HOP), min(len(clip), (b + pad) * HOP + N_FFT)
            calls.append(Call(source, unit, round(offset_s + start / SR, 3), bandpass(clip[start:stop], lo, hi),
                              round(lo, 1), round(hi, 1)))
    return calls


# ------------------------------------------------------------------------------------------------------------------
# Material: species pools split into train and test
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class Material:
    species: list[str]                      # species_id -> name
    train: dict[int, list[Call]]
    test: dict[int, list[Call]]
    distractors: list[Call]
    soundscapes: list[np.ndarray]
    split_notes: dict[str, str]


def load_material(sources: list[Source], cache: Path | None, rng: np.random.Generator) -> Material:
    """Fetch and decode all sources, segment calls, and split each species' calls into train and test pools."""
    by_species: dict[str, list[Call]] = defaultdict(list)
    distractors: list[Call] = []
    soundscapes: list[np.ndarray] = []
    for source in sources:
        clips = decode_source(source, fetch_bytes(source, cache))
        if source.kind == "soundscape":
            soundscapes += clips
            continue
        calls = [call for i, clip in enumerate(clips) for call in calls_of(highpass(clip), source, f"{source.name}#{i}")]
        (by_species[source.species] if source.kind == "call" else distractors).extend(calls)
    if set(by_species) != set(TARGET_SPECIES):
        raise SystemExit(f"call sources name species {sorted(set(by_species) ^ set(TARGET_SPECIES))} "
                         "not matched by TARGET_SPECIES")
    species = list(TARGET_SPECIES)
    train, test, notes = {}, {}, {}
    for sid, name in enumerate(species):
        train[sid], test[sid], notes[name] = split_calls(by_species[name], rng)
    return Material(species, train, test, distractors, soundscapes, notes)


def calls_of(clip: np.ndarray, source: Source, unit: str) -> list[Call]:
    """The calls inside each crop of one source clip, with the noise floor taken from the whole clip."""
    floor = noise_floor(clip)
    return [call for a, b in crop_spans(clip, source.crops) for call in segment(clip[a:b], floor, source.name, unit, a / SR)]


def n_train_calls(n: int) -> int:
    """How many of a species' n distinct calls train gets: 65 % rounded half up, at least 1, never fewer than test,
    and (n >= 2) at least one left for test."""
    if n <= 1:
        return n
    return min(n - 1, max(int(np.floor(TRAIN_FRACTION * n + 0.5)), (n + 1) // 2))


def bouts_of(calls: list[Call]) -> list[list[Call]]:
    """Calls grouped into bouts: runs of one clip whose gaps are < BOUT_GAP_S (one song, one stretch of chorus)."""
    bouts: list[list[Call]] = []
    for call in sorted(calls, key=lambda c: (c.unit, c.start_s)):
        last = bouts[-1][-1] if bouts else None
        if last is not None and last.unit == call.unit and call.start_s - last.end_s < BOUT_GAP_S:
            bouts[-1].append(call)
        else:
            bouts.append([call])
    return bouts


def spread_order(m: int, rng: np.random.Generator) -> list[int]:
    """0..m-1 in the order of a randomly shifted van der Corput sequence: each prefix is spread evenly over the
    range, so blocks taken in this order alternate with the blocks left out."""
    phase, order, seen, j = float(rng.random()), [], set(), 0
    while len(order) < m:
        v, x, denom = 0.0, j, 1.0
        while x:
            denom *= 2
            v += (x & 1) / denom
            x >>= 1
        index = min(int(((v + phase) % 1.0) * m), m - 1)
        if index not in seen:
            seen.add(index)
            order.append(index)
        j += 1
    return order


def split_calls(calls: list[Call], rng: np.random.Generator) -> tuple[list[Call], list[Call], str]:
    """Split a species' distinct calls about 65/35 into train and test.

    With >= 3 source clips, whole clips go to test (fewest calls first, ties in seeded order) while test stays within
    its share. The rest of test's share is taken by call: whole bouts (calls < BOUT_GAP_S apart), spread over the
    clips so train and test bouts alternate; only when no whole bout fits is one bout cut, at one of its ends.
    """
    n = len(calls)
    if n <= 1:
        return calls, calls, "one call only: the same call in train and test"
    n_test = n - n_train_calls(n)
    by_unit: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_unit[call.unit].append(call)
    units = sorted(by_unit)
    test: set[int] = set()   # id() of the calls that go to test
    test_units: list[str] = []
    if len(units) >= 3:
        ties = rng.permutation(len(units))
        for _, _, unit in sorted((len(by_unit[u]), int(t), u) for u, t in zip(units, ties)):
            if len(test) + len(by_unit[unit]) > n_test:
                break
            test_units.append(unit)
            test.update(id(c) for c in by_unit[unit])
    cut = 0
    if len(test) < n_test:
        bouts = bouts_of([c for c in calls if c.unit not in test_units])
        for i in spread_order(len(bouts), rng):
            if len(test) + len(bouts[i]) <= n_test:
                test.update(id(c) for c in bouts[i])
                bouts[i] = []
        need = n_test - len(test)
        if need:
            bout = min((b for b in bouts if len(b) > need), key=len)
            part = bout[:need] if rng.random() < 0.5 else bout[-need:]
            test.update(id(c) for c in part)
            cut = 1
    train_calls = [c for c in calls if id(c) not in test]
    test_calls = [c for c in calls if id(c) in test]
    train_units, test_units_all = {c.unit for c in train_calls}, {c.unit for c in test_calls}
    note = (f"{len(train_calls)} train / {len(test_calls)} test calls; clips: {len(train_units - test_units_all)} "
            f"train only, {len(test_units_all - train_units)} test only, {len(train_units & test_units_all)} shared by "
            f"call" + (" (one bout cut between train and test)" if cut else ""))
    return train_calls, test_calls, note


# ------------------------------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------------------------------


def recording_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Unique 9-hex-digit ids like the competition's."""
    ids: dict[str, None] = {}
    while len(ids) < n:
        ids[f"{int(rng.integers(0, 16 ** 9)):09x}"] = None
    return list(ids)


def plan_background(rng: np.random.Generator, lengths: list[int]) -> tuple[tuple[int, int, int], ...]:
    """Random crops of the soundscapes, chained until 60 s (plus crossfades) are filled."""
    parts, total = [], 0
    need = N_SAMPLES + int(CROSSFADE_S * SR) * 8
    while total < need:
        piece = int(rng.integers(len(lengths)))
        n = min(lengths[piece], need - total + int(CROSSFADE_S * SR), int(rng.uniform(8, 30) * SR))
        n = max(n, int(2 * CROSSFADE_S * SR) + 1)
        n = min(n, lengths[piece])
        offset = int(rng.integers(0, lengths[piece] - n + 1))
        parts.append((piece, offset, n))
        total += n - int(CROSSFADE_S * SR)
    return tuple(parts)


def place(rng: np.random.Generator, placed: list[Placed], call: Call, **fields) -> Placed:
    """Put a call at a random time, avoiding time+band overlap with earlier calls when it can."""
    duration = len(call.samples) / SR
    for _ in range(30):
        t = float(rng.uniform(0.0, SECONDS - duration))
        clash = any(t < p.t_max and p.t_min < t + duration and call.f_min < p.f_max and p.f_min < call.f_max
                    for p in placed)
        if not clash:
            break
    return Placed(t_min=round(t, 4), t_max=round(t + duration, 4), f_min=call.f_min, f_max=call.f_max,
                  snr_db=round(float(rng.uniform(*SNR_DB)), 2), **fields)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Fraction of band a that band b covers."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / max(a[1] - a[0], 1.0)


def confuser_for(rng: np.random.Generator, material: Material, k: int, exclude: set[int]) -> tuple[str, int, int]:
    """A non-k sound in species k's band: a distractor, or a call of another (then also labelled) target species."""
    band_k = (np.median([c.f_min for c in material.train[k]]), np.median([c.f_max for c in material.train[k]]))
    candidates = [("distractor", i, -1) for i, c in enumerate(material.distractors)]
    if exclude:  # fp-only recordings stay free of target calls: their confusers are all distractors
        candidates += [("train", i, j) for j, calls in material.train.items() if j != k and j not in exclude
                       for i in range(len(calls))]
    calls = [material.distractors[i] if pool == "distractor" else material.train[j][i] for pool, i, j in candidates]
    score = np.array([overlap(band_k, (c.f_min, c.f_max)) for c in calls]) + 1e-3
    weights = score ** 2 / (score ** 2).sum()
    return candidates[int(rng.choice(len(candidates), p=weights))]


def species_for_recording(rng: np.random.Generator, counts: np.ndarray) -> list[int]:
    """1-4 species, the least used so far favoured, so that species end up roughly balanced."""
    n = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15]))
    weights = 1.0 / (1.0 + counts - counts.min())
    chosen = rng.choice(len(counts), size=min(n, len(counts)), replace=False, p=weights / weights.sum())
    counts[chosen] += 1
    return sorted(int(s) for s in chosen)


def plan_recording(rng: np.random.Generator, material: Material, rid: str, split: str, species: list[int],
                   n_extra: int, lengths: list[int]) -> RecordingPlan:
    """Calls of the chosen species (1-3 each) plus n_extra confusers (train, fp) or distractors (test)."""
    pools = material.train if split == "train" else material.test
    placed: list[Placed] = []
    role = "tp" if split == "train" else "truth"
    for sid in species:
        for _ in range(int(rng.integers(1, 4))):
            index = int(rng.integers(len(pools[sid])))
            placed.append(place(rng, placed, pools[sid][index], role=role, species_id=sid, pool=split, index=index))
    labelled = set(species)
    for _ in range(n_extra):
        if split == "train":
            k = int(rng.choice([s for s in range(len(material.species)) if s not in labelled]))
            pool, index, j = confuser_for(rng, material, k, labelled)
            call = material.distractors[index] if pool == "distractor" else material.train[j][index]
            fp = place(rng, placed, call, role="fp", species_id=k, pool=pool, index=index)
            placed.append(fp)
            if j >= 0:  # a real call of target j imitating k: it is a tp of j as well (as in the Kaggle data)
                placed.append(Placed("tp", j, pool, index, fp.t_min, fp.t_max, fp.f_min, fp.f_max, fp.snr_db))
        else:
            index = int(rng.integers(len(material.distractors)))
            placed.append(place(rng, placed, material.distractors[index], role="distractor", species_id=-1,
                                pool="distractor", index=index))
    return RecordingPlan(rid, split, plan_background(rng, lengths), round(float(rng.uniform(*LEVEL_DBFS)), 2),
                         tuple(placed))


def plan_dataset(material: Material, seed: int, n_train: int, n_test: int) -> list[RecordingPlan]:
    """All recordings: train 80% with 1-4 species (+0-2 fp), 20% fp-only; test 15% background (+distractors)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    ids = recording_ids(rng, n_train + n_test)
    lengths = [len(s) for s in material.soundscapes]
    counts = np.zeros(len(material.species))
    plans = []
    for i, rid in enumerate(ids):
        split = "train" if i < n_train else "test"
        empty = rng.random() < (0.2 if split == "train" else 0.15)
        species = [] if empty else species_for_recording(rng, counts)
        n_extra = int(rng.integers(1, 4)) if empty and split == "train" else int(rng.integers(0, 3))
        plans.append(plan_recording(rng, material, rid, split, species, n_extra, lengths))
    return plans


# ------------------------------------------------------------------------------------------------------------------
# Rendering (workers)
# ------------------------------------------------------------------------------------------------------------------

_MATERIAL: Material | None = None


def render_background(plan: RecordingPlan, soundscapes: list[np.ndarray]) -> np.ndarray:
    """Chain the planned crops with equal-power crossfades, each crop at equal RMS, then set the level."""
    fade = int(CROSSFADE_S * SR)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    out = np.zeros(0, dtype=np.float64)
    for piece, offset, n in plan.background:
        part = soundscapes[piece][offset:offset + n].astype(np.float64)
        part = part / max(np.sqrt(np.mean(part ** 2)), 1e-9)
        if out.size:
            part[:fade] = part[:fade] * ramp + out[-fade:] * ramp[::-1]
            out = out[:-fade]
        out = np.concatenate([out, part])
    out = out[:N_SAMPLES]
    return out * 10 ** (plan.level_dbfs / 20)


def band_power(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean power in [lo, hi] Hz per sample (Parseval on the rfft)."""
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(freqs >= lo) & (freqs <= hi)].sum() / len(x) ** 2)


def call_samples(material: Material, call: Placed) -> np.ndarray:
    """The samples of a planted tp/truth call or distractor (fp calls of target species render as their tp twin)."""
    if call.pool == "distractor":
        return material.distractors[call.index].samples
    pools = material.train if call.pool == "train" else material.test
    return pools[call.species_id][call.index].samples


def render(plan: RecordingPlan, out_dir: str) -> str:
    """Mix one recording and write it as 16-bit FLAC; returns its id."""
    material = _MATERIAL
    mix = render_background(plan, material.soundscapes)
    background = mix.copy()
    for call in plan.calls:
        if call.role == "fp" and call.pool != "distractor":
            continue  # its tp twin plants the same sound once
        samples = call_samples(material, call).astype(np.float64)
        start = int(round(call.t_min * SR))
        n = min(len(samples), N_SAMPLES - start)
        noise = band_power(background[start:start + n], call.f_min, call.f_max)
        signal_power = max(band_power(samples[:n], call.f_min, call.f_max), 1e-20)
        mix[start:start + n] += samples[:n] * np.sqrt(noise * 10 ** (call.snr_db / 10) / signal_power)
    peak = np.abs(mix).max()
    if peak > MAX_PEAK:
        mix *= MAX_PEAK / peak
    pcm = np.round(mix * 32767).astype(np.int16)
    sf.write(Path(out_dir) / plan.split / f"{plan.recording_id}.flac", pcm, SR, format="FLAC", subtype="PCM_16")
    return plan.recording_id


def _render_star(args: tuple[RecordingPlan, str]) -> str:
    return render(*args)


# ------------------------------------------------------------------------------------------------------------------
# Tables and output folder
# ------------------------------------------------------------------------------------------------------------------


def box_line(rid: str, call: Placed) -> str:
    return f"{rid},{call.species_id},1,{call.t_min:.4f},{call.f_min:.4f},{call.t_max:.4f},{call.f_max:.4f}"


def write_tables(out: Path, plans: list[RecordingPlan]) -> dict[str, int]:
    """train_tp/train_fp (sorted by id, species, time), sample_submission and test_truth (sorted by id)."""
    counts = {}
    for name, role in (("train_tp.csv", "tp"), ("train_fp.csv", "fp")):
        rows = sorted(((p.recording_id, c.species_id, c.t_min), box_line(p.recording_id, c))
                      for p in plans if p.split == "train" for c in p.calls if c.role == role)
        (out / name).write_text("\n".join([",".join(BOX_COLUMNS), *(line for _, line in rows)]) + "\n")
        counts[name] = len(rows)
    header = ",".join(["recording_id", *(f"s{i}" for i in range(N_SPECIES))])
    test = sorted((p for p in plans if p.split == "test"), key=lambda p: p.recording_id)
    zeros = ",".join("0" * N_SPECIES)
    (out / "sample_submission.csv").write_text("\n".join([header, *(f"{p.recording_id},{zeros}" for p in test)]) + "\n")
    truth = []
    for p in test:
        present = {c.species_id for c in p.calls if c.role == "truth"}
        truth.append(f"{p.recording_id}," + ",".join(str(int(s in present)) for s in range(N_SPECIES)))
    (out / "test_truth.csv").write_text("\n".join([header, *truth]) + "\n")
    return counts


def distinct_calls(train: list[Call], test: list[Call]) -> dict[str, int]:
    """Distinct calls and source clips of one species on each side (a call on both sides counts on both)."""
    train_units, test_units = {c.unit for c in train}, {c.unit for c in test}
    return {"total": len({c.key for c in train} | {c.key for c in test}), "train": len({c.key for c in train}),
            "test": len({c.key for c in test}), "clips": len(train_units | test_units),
            "clips_train_only": len(train_units - test_units), "clips_test_only": len(test_units - train_units),
            "clips_shared": len(train_units & test_units)}


def sources_used(material: Material, plans: list[RecordingPlan]) -> dict:
    """Which calls (source, unit, offset) each split used, per species, and how each species was split."""
    used: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"train": set(), "test": set()})
    for plan in plans:
        for call in plan.calls:
            if call.pool in ("train", "test") and call.role in ("tp", "truth"):
                pools = material.train if call.pool == "train" else material.test
                used[material.species[call.species_id]][call.pool].add(pools[call.species_id][call.index].key)
            elif call.pool == "distractor":
                used["(distractor)"][plan.split].add(material.distractors[call.index].key)
    return {
        "species": {i: name for i, name in enumerate(material.species)},
        "split": material.split_notes,
        "calls_available": {name: {"train": len(material.train[i]), "test": len(material.test[i])}
                            for i, name in enumerate(material.species)},
        "distinct_calls": {name: distinct_calls(material.train[i], material.test[i])
                           for i, name in enumerate(material.species)},
        "used": {name: {split: sorted(keys) for split, keys in splits.items()} for name, splits in sorted(used.items())},
    }


def check_out_dir(out: Path) -> None:
    """Refuse to replace a non-empty folder that this builder did not write."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SystemExit(f"{out} is not empty and was not built by {Path(__file__).name}; refusing to overwrite it")


def publish(tmp: Path, out: Path) -> None:
    """Swap the finished temp folder into place (readers never see a half-built dataset)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None, help="folder of source files named by sha256 or name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=120)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sources", type=Path, default=SOURCES_CSV)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    check_out_dir(out)
    started = time.time()
    global _MATERIAL
    _MATERIAL = material = load_material(read_sources(args.sources), args.cache,
                                         np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(0,))))
    plans = plan_dataset(material, args.seed, args.train, args.test)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    for sub in ("train", "test"):
        (tmp / sub).mkdir(parents=True)
    (tmp / MARKER).write_text("built by benchmarks/realaudio/build.py\n")
    jobs = [(plan, str(tmp)) for plan in plans]
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            for _ in pool.imap_unordered(_render_star, jobs, chunksize=4):
                pass
    else:
        for job in jobs:
            _render_star(job)
    counts = write_tables(tmp, plans)
    (tmp / "sources_used.json").write_text(json.dumps(sources_used(material, plans), indent=1) + "\n")
    info = {"seed": args.seed, "n_train": args.train, "n_test": args.test, **counts,
            "species": material.species, "snr_db": SNR_DB, "level_dbfs": LEVEL_DBFS}
    (tmp / "build_info.json").write_text(json.dumps(info, indent=1) + "\n")
    publish(tmp, out)
    print(f"wrote {out}: {args.train} train + {args.test} test recordings, {counts['train_tp.csv']} tp, "
          f"{counts['train_fp.csv']} fp boxes in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
