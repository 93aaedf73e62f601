"""Training windows: fixed-length crops of the train recordings, each with multi-label targets.

Each true-positive box gives one window of `window_seconds` centred on the call and clamped inside the recording.
A window's labels are every tp species whose box falls inside it enough (not just the species that anchored it), so
overlapping calls are not taught as absent; fp boxes inside it mark known negatives. Optionally, windows centred on
fp boxes add hard negatives. The result is one row per window, written to Parquet with this schema:

| column       | type        | meaning                                                               |
|--------------|-------------|-----------------------------------------------------------------------|
| window_id    | int64       | row number, the index into the waveform cache                          |
| recording_id | string      | train recording                                                        |
| fold         | int64       | the recording's fold                                                   |
| start, end   | float64     | window bounds in seconds within the recording                          |
| source       | string      | "tp" or "fp": the kind of box the window is centred on                 |
| species_id   | int64       | species of that anchoring box                                          |
| labels       | list<int8>  | 24 entries: 1 where a tp box of that species overlaps the window        |
| negatives    | list<int8>  | 24 entries: 1 where an fp box overlaps and no tp box of that species does |
| box_species  | list<int64> | species of every tp/fp box of the recording near the window (within one  |
|              |             | window length either side), for frame-wise (SED) targets                 |
| box_start, box_end | list<float64> | those boxes' bounds in seconds relative to the window start      |
| box_positive | list<int8>  | 1 for a tp box, 0 for an fp box                                          |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, RECORDING_SECONDS

WINDOW_COLUMNS: tuple[str, ...] = ("window_id", "recording_id", "fold", "start", "end", "source", "species_id",
                                   "labels", "negatives", "box_species", "box_start", "box_end", "box_positive")


def centred_start(t_min: np.ndarray, t_max: np.ndarray, window_seconds: float,
                  recording_seconds: float = RECORDING_SECONDS) -> np.ndarray:
    """Start of a window centred on each box, clamped so the window lies inside [0, recording_seconds]."""
    start = (np.asarray(t_min) + np.asarray(t_max)) / 2 - window_seconds / 2
    return np.clip(start, 0.0, max(recording_seconds - window_seconds, 0.0))


def overlap_fraction(box_min: np.ndarray, box_max: np.ndarray, start: float, end: float) -> np.ndarray:
    """Fraction of each box's duration that lies inside [start, end]."""
    inside = np.clip(np.minimum(box_max, end) - np.maximum(box_min, start), 0.0, None)
    return inside / np.maximum(box_max - box_min, 1e-9)


def call_fraction(box_min: np.ndarray, box_max: np.ndarray, start: float, end: float) -> np.ndarray:
    """Fraction of the shorter of each box and the window [start, end] that their overlap fills: a call longer than
    the window (a trill, a chorus) counts where it fills the window, which `overlap_fraction` cannot say once the
    window is shorter than the box."""
    inside = np.clip(np.minimum(box_max, end) - np.maximum(box_min, start), 0.0, None)
    return inside / np.maximum(np.minimum(box_max - box_min, end - start), 1e-9)


def crop_windows(tp: pd.DataFrame, fp: pd.DataFrame, folds: pd.DataFrame, *, window_seconds: float = 10.0,
                 min_box_overlap: float = 0.5, fp_window_fraction: float = 0.0, seed: int = 0,
                 recording_seconds: float = RECORDING_SECONDS) -> pd.DataFrame:
    """Windows centred on every tp box (and on a seeded sample of fp boxes), with multi-hot labels and negatives.

    `min_box_overlap` is the fraction of a box that must be inside a window for its species to count there;
    `fp_window_fraction` the share of fp boxes that also get a window of their own, as hard negatives.
    """
    if not 0 < window_seconds <= recording_seconds:
        raise ValueError(f"window_seconds must be in (0, {recording_seconds}], got {window_seconds}")
    anchors = [tp.assign(source="tp")]
    if fp_window_fraction > 0:
        rng = np.random.default_rng(seed)
        chosen = rng.random(len(fp)) < fp_window_fraction
        anchors.append(fp[chosen].assign(source="fp"))
    anchor = pd.concat(anchors, ignore_index=True)
    anchor["start"] = centred_start(anchor.t_min, anchor.t_max, window_seconds, recording_seconds)
    anchor["end"] = anchor.start + window_seconds
    anchor = anchor.sort_values(["recording_id", "start", "species_id", "source"], kind="stable")
    return windows_table(anchor, tp, fp, folds, min_box_overlap)


def windows_table(anchor: pd.DataFrame, tp: pd.DataFrame, fp: pd.DataFrame, folds: pd.DataFrame,
                  min_box_overlap: float) -> pd.DataFrame:
    """The windows table (module schema) of windows given as `anchor` rows (recording_id, start, end, source,
    species_id), in their order, with the labels, negatives and nearby boxes that the tp/fp boxes give them."""
    labels, negatives = _window_targets(anchor, tp, fp, min_box_overlap)
    fold_of = folds.set_index("recording_id").fold
    missing = sorted(set(anchor.recording_id) - set(fold_of.index))
    if missing:
        raise ValueError(f"recordings without a fold: {missing[:5]}")
    windows = pd.DataFrame({
        "window_id": np.arange(len(anchor), dtype=np.int64),
        "recording_id": anchor.recording_id.to_numpy(),
        "fold": anchor.recording_id.map(fold_of).to_numpy(dtype=np.int64),
        "start": anchor.start.to_numpy(dtype=float),
        "end": anchor.end.to_numpy(dtype=float),
        "source": anchor.source.to_numpy(),
        "species_id": anchor.species_id.to_numpy(dtype=np.int64),
        "labels": list(labels),
        "negatives": list(negatives),
        **_nearby_boxes(anchor, tp, fp),
    })
    return windows


def _nearby_boxes(anchor: pd.DataFrame, tp: pd.DataFrame, fp: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """Every tp and fp box of each window's recording that overlaps the window widened by its own length on each
    side (so a randomly shifted crop still finds its boxes), with times relative to the window start."""
    boxes = pd.concat([tp.assign(positive=1), fp.assign(positive=0)], ignore_index=True)
    by_recording = {rid: group for rid, group in boxes.groupby("recording_id")}
    columns: dict[str, list[np.ndarray]] = {"box_species": [], "box_start": [], "box_end": [], "box_positive": []}
    for window in anchor.itertuples(index=False):
        group = by_recording.get(window.recording_id, boxes.iloc[:0])
        length = window.end - window.start
        near = group[(group.t_max > window.start - length) & (group.t_min < window.end + length)]
        columns["box_species"].append(near.species_id.to_numpy(dtype=np.int64))
        columns["box_start"].append(near.t_min.to_numpy(dtype=np.float64) - window.start)
        columns["box_end"].append(near.t_max.to_numpy(dtype=np.float64) - window.start)
        columns["box_positive"].append(near.positive.to_numpy(dtype=np.int8))
    return columns


def _window_targets(anchor: pd.DataFrame, tp: pd.DataFrame, fp: pd.DataFrame,
                    min_box_overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot labels and known-negative masks of each anchor window, from the boxes of its recording."""
    labels = np.zeros((len(anchor), N_SPECIES), dtype=np.int8)
    negatives = np.zeros((len(anchor), N_SPECIES), dtype=np.int8)
    tp_by_recording = {rid: group for rid, group in tp.groupby("recording_id")}
    fp_by_recording = {rid: group for rid, group in fp.groupby("recording_id")}
    for row, window in enumerate(anchor.itertuples(index=False)):
        for boxes, target in ((tp_by_recording.get(window.recording_id), labels),
                              (fp_by_recording.get(window.recording_id), negatives)):
            if boxes is None:
                continue
            inside = overlap_fraction(boxes.t_min.to_numpy(), boxes.t_max.to_numpy(), window.start, window.end)
            target[row, boxes.species_id.to_numpy()[inside >= min_box_overlap]] = 1
        if window.source == "tp":
            labels[row, window.species_id] = 1
    negatives[labels == 1] = 0
    return labels, negatives


def label_matrix(windows: pd.DataFrame, column: str = "labels") -> np.ndarray:
    """The (n_windows, 24) int8 matrix of a list column read back from Parquet."""
    if len(windows) == 0:
        return np.zeros((0, N_SPECIES), dtype=np.int8)
    return np.stack([np.asarray(value, dtype=np.int8) for value in windows[column]])
