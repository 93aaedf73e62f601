"""Test-time choices scored on a finished run's own fold models, without retraining: how recordings are pooled over
their sliding windows (max or mean) and how folds are combined (mean, rank mean, or one fold alone).

Why: these choices change nothing before ``predict_test``, whose per-window scores
(``results/test/fold{k}_windows.parquet``) the workflow keeps, so each is an ablation line that costs a second
instead of another training run. The row for the run's own settings reproduces its ``scores/test.json`` (when
calibration is off), which ties the table to the workflow's figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rfcx.data.dataset import load_dataset
from rfcx.prediction.scoring import score_submission
from rfcx.prediction.submission import ENSEMBLE_METHODS, POOLINGS, ensemble, make_submission, pool_recordings

_FOLD_FILE = re.compile(r"fold(\d+)_windows\.parquet")


@dataclass(frozen=True)
class Variant:
    """One way of turning per-window fold scores into a submission: `pooling` over a recording's windows, then
    `ensemble` over `folds` (a single fold: its pooled scores as they are)."""

    pooling: str
    ensemble: str
    folds: tuple[int, ...]

    @property
    def name(self) -> str:
        combine = f"fold {self.folds[0]} alone" if len(self.folds) == 1 else f"{self.ensemble} of {len(self.folds)} folds"
        return f"{self.pooling} pooling, {combine}"


def fold_window_scores(results: Path) -> dict[int, pd.DataFrame]:
    """Each fold's per-window test scores from a results folder, by fold number."""
    paths = {int(match.group(1)): path for path in sorted((results / "test").glob("fold*_windows.parquet"))
             if (match := _FOLD_FILE.fullmatch(path.name))}
    if not paths:
        raise FileNotFoundError(f"no per-window test scores (test/fold*_windows.parquet) under {results}: "
                                "run the workflow to its end first")
    return {fold: pd.read_parquet(paths[fold]) for fold in sorted(paths)}


def variants(folds: list[int]) -> list[Variant]:
    """Every pooling with every ensemble of all folds, then each fold alone with max pooling."""
    every = tuple(folds)
    combined = [Variant(pooling, method, every) for pooling in POOLINGS for method in ENSEMBLE_METHODS]
    return combined + [Variant("max", "mean", (fold,)) for fold in folds]


def score_test_time_variants(results: str | Path, data_dir: str | Path, pooling: str = "max",
                             method: str = "mean") -> pd.DataFrame:
    """Test LWLRAP of every variant (columns variant, test_lwlrap, change, run_setting), change against the run's
    own setting (`pooling`, `method`, every fold). Needs the dataset's test_truth.csv."""
    dataset = load_dataset(data_dir, check_audio=False)
    if dataset.test_truth is None:
        raise ValueError(f"{data_dir} has no test_truth.csv: test-time choices cannot be scored without it")
    per_fold = fold_window_scores(Path(results))
    pooled = {(fold, kind): pool_recordings(scores, kind) for fold, scores in per_fold.items() for kind in POOLINGS}
    rows: list[dict[str, Any]] = []
    for variant in variants(list(per_fold)):
        combined = ensemble([pooled[(fold, variant.pooling)] for fold in variant.folds], variant.ensemble)
        score = score_submission(make_submission(combined, dataset.sample_submission), dataset.test_truth)
        rows.append({"variant": variant.name, "test_lwlrap": score["lwlrap"],
                     "run_setting": variant == Variant(pooling, method, tuple(per_fold))})
    table = pd.DataFrame(rows)
    own = table.loc[table.run_setting, "test_lwlrap"]
    table["change"] = table.test_lwlrap - own.iloc[0] if len(own) else float("nan")
    return table[["variant", "test_lwlrap", "change", "run_setting"]]
