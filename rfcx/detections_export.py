"""Detections in the formats people open them with: Raven Pro selection tables, Audacity labels, a folder summary.

Reviewing detections means looking at them on the spectrogram. Raven draws a selection as a time-frequency box, so
each detection gets its species' band: from a bands table when given, else the median box of that species in the
training labels (train_tp.csv), else the whole spectrum (0 Hz to Nyquist). Audacity labels carry times only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rfcx.constants import SPECIES_COLUMNS
from rfcx.io import atomic_path
from rfcx.submission import pool_recordings

#: species_id -> (low, high) frequency in Hz.
Bands = dict[int, tuple[float, float]]

RAVEN_COLUMNS: tuple[str, ...] = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                                  "High Freq (Hz)", "Species", "Score")
SUMMARY_COLUMNS: tuple[str, ...] = ("recording", "duration_s", "windows", "detections", "top_species", "max_score")


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
