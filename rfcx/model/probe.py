"""The embedding family's classifier: one logistic regression per species on pretrained embeddings (a "probe").

This is how the field trains with few labels (BirdNET-Analyzer's custom classifiers, OpenSoundscape's shallow
classifiers on the bioacoustics model zoo, Perch's agile modelling): the pretrained model already separates sounds,
and a linear map per species needs only the dataset's boxes. Targets come from the boxes on the embedding grid:

- a window that a tp box of species k fills (rfcx.data.windows.call_fraction >= min_box_overlap) is a positive of k;
- a window that a tp box of k only grazes is left out for k (neither call nor background);
- every other window of a labelled recording, fp boxes and unboxed audio included, is a negative of k. Unlabelled
  audio is never a positive.

A window is described by its own vector and the mean of its `context` neighbours on each side (`with_context`):
a 3 s window says little about a call cut at its edge or a chorus around it, and the neighbours on a fine grid
add that temporal context at the cost of a wider linear map.

Each species' classes are balanced by weight, so a rare species is not drowned by background windows. The fitted
probe is plain arrays (standardisation, weights, biases) saved as .npz: no pickled objects, and prediction is one
matrix product that any backend or machine can run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rfcx.constants import N_SPECIES, SPECIES_COLUMNS
from rfcx.data.windows import call_fraction
from rfcx.io import atomic_path
from rfcx.model.embedding import Embeddings


def grid_targets(index: pd.DataFrame, tp: pd.DataFrame, min_box_overlap: float) -> np.ndarray:
    """(windows, species) float32 targets of grid windows (index: recording_id, start, end): 1 positive, 0 negative,
    NaN left out (a box of that species overlaps the window, but fills less than `min_box_overlap` of it)."""
    targets = np.zeros((len(index), N_SPECIES), dtype=np.float32)
    boxes_of = {recording_id: group for recording_id, group in tp.groupby("recording_id")}
    rows_of = index.groupby("recording_id", sort=False).indices
    for recording_id, rows in rows_of.items():
        boxes = boxes_of.get(recording_id)
        if boxes is None:
            continue
        t_min, t_max = boxes.t_min.to_numpy(float), boxes.t_max.to_numpy(float)
        species = boxes.species_id.to_numpy(int)
        for row in rows:
            filled = call_fraction(t_min, t_max, index.start.iat[row], index.end.iat[row])
            touched = species[filled > 0]
            targets[row, touched] = np.nan
            targets[row, species[filled >= min_box_overlap]] = 1.0
    return targets


def with_context(vectors: np.ndarray, recording_ids: np.ndarray, context: int) -> np.ndarray:
    """(windows, dim) -> (windows, 2 dim): each window's vector, then the mean of the `context` windows on each side
    of it on the grid (rows in time order per recording). A neighbour past the recording's ends counts as the window
    itself, so a recording is described the same way whatever comes before or after it in the matrix. context 0:
    the vectors unchanged."""
    vectors = np.asarray(vectors)
    if context == 0:
        return vectors
    recording_ids = np.asarray(recording_ids)
    total = np.zeros(vectors.shape, np.float64)
    for shift in (step * side for step in range(1, context + 1) for side in (1, -1)):
        neighbour = np.roll(vectors, shift, axis=0)
        outside = np.roll(recording_ids, shift) != recording_ids
        if abs(shift) >= len(vectors):
            outside[:] = True
        elif shift > 0:
            outside[:shift] = True  # np.roll wraps the matrix's end round to its start
        else:
            outside[shift:] = True
        total += np.where(outside[:, None], vectors, neighbour)
    return np.concatenate([vectors, (total / (2 * context)).astype(vectors.dtype)], axis=1)


@dataclass(frozen=True)
class Probe:
    """A fitted probe: x -> sigmoid(((x - mean) / scale) @ weights.T + bias), per species, where x is a window's
    vector with its `context` (with_context). Species that had no positive (or no negative) training window are
    not fitted and score 0."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    fitted: np.ndarray
    context: int = 0

    def predict(self, vectors: np.ndarray, recording_ids: np.ndarray) -> np.ndarray:
        """(windows, species) probabilities of grid windows (rows in time order per recording of `recording_ids`)."""
        features = with_context(vectors, recording_ids, self.context)
        logits = ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.weights.T + self.bias
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
        scores[:, ~self.fitted] = 0.0
        return scores.astype(np.float32)

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as partial:
            with open(partial, "wb") as handle:
                np.savez(handle, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias,
                         fitted=self.fitted, context=np.int64(self.context))

    @classmethod
    def load(cls, path: str | Path) -> Probe:
        with np.load(path) as arrays:
            fields = {name: arrays[name] for name in ("mean", "scale", "weights", "bias", "fitted")}
            return cls(**fields, context=int(arrays["context"]) if "context" in arrays else 0)


def recording_scores(probes: list[Probe], vectors: np.ndarray, block: int = 4096) -> np.ndarray:
    """The mean of the fold probes' scores over one recording's grid windows (rows in time order), `block` windows
    at a time, each block with its probes' context of neighbours around it: the same numbers as scoring the
    recording at once, without its float64 features in memory whole (a probe with context reads 2 x 1024 of them
    per window, 16 kB: 1.2 GB for a 24-hour recording on a 0.75 s grid)."""
    vectors = np.asarray(vectors)
    reach = max((probe.context for probe in probes), default=0)
    recording = np.zeros(len(vectors), dtype=np.int64)
    scores = []
    for start in range(0, len(vectors), block):
        end = min(start + block, len(vectors))
        low, high = max(0, start - reach), min(len(vectors), end + reach)
        mean = np.mean([probe.predict(vectors[low:high], recording[low:high]) for probe in probes], axis=0)
        scores.append(mean[start - low:end - low])
    return np.concatenate(scores) if scores else np.zeros((0, N_SPECIES), dtype=np.float32)


def fit_probe(embeddings: Embeddings, targets: np.ndarray, *, c: float, context: int = 0,
              max_iter: int = 1000) -> Probe:
    """One class-balanced L2 logistic regression per species on the standardised vectors with their `context`,
    each on the windows whose target for it is known (not NaN). `c` is scikit-learn's inverse regularisation
    strength."""
    from sklearn.linear_model import LogisticRegression

    vectors = np.asarray(with_context(embeddings.vectors, embeddings.index.recording_id.to_numpy(), context),
                         np.float64)
    mean = vectors.mean(axis=0)
    scale = vectors.std(axis=0)
    scale[scale < 1e-8] = 1.0
    standard = (vectors - mean) / scale
    weights = np.zeros((N_SPECIES, vectors.shape[1]))
    bias = np.zeros(N_SPECIES)
    fitted = np.zeros(N_SPECIES, dtype=bool)
    for species in range(N_SPECIES):
        known = ~np.isnan(targets[:, species])
        labels = targets[known, species].astype(int)
        if not labels.any() or labels.all():  # one class only (or no known window): nothing to separate
            continue
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter)
        model.fit(standard[known], labels)
        weights[species], bias[species], fitted[species] = model.coef_[0], model.intercept_[0], True
    return Probe(mean, scale, weights, bias, fitted, context)


def window_scores(probe: Probe, embeddings: Embeddings) -> pd.DataFrame:
    """Each grid window's scores: recording_id, start, end, s0..s23."""
    scores = pd.DataFrame(probe.predict(embeddings.vectors, embeddings.index.recording_id.to_numpy()),
                          columns=list(SPECIES_COLUMNS))
    return pd.concat([embeddings.index.reset_index(drop=True), scores], axis=1)


def score_recordings(probe: Probe, embeddings: Embeddings, pooling: str) -> pd.DataFrame:
    """Whole recordings scored as the submission scores them: the windows pooled per recording (recording_id,
    s0..s23), by rfcx.prediction.submission.pool_recordings."""
    from rfcx.prediction.submission import pool_recordings

    return pool_recordings(window_scores(probe, embeddings), pooling)
