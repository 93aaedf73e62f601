"""Figures for the Snakemake report: training curves, per-species scores, augmentation examples.

Matplotlib runs headless (Agg), so the figures render on clusters and in CI without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rfcx.io import atomic_path  # noqa: E402


def _save(figure: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=110, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    plt.close(figure)


def plot_per_species(scores: dict[str, Any], path: str | Path, title: str) -> None:
    """Bar chart of LWLRAP per species (grey where a species has no positive label)."""
    names = list(scores["per_species"])
    values = [np.nan if value is None else value for value in scores["per_species"].values()]
    figure, axis = plt.subplots(figsize=(10, 3.2))
    axis.bar(names, np.nan_to_num(values), color=["#999" if np.isnan(v) else "#2a7" for v in values])
    axis.axhline(scores["lwlrap"], color="k", linestyle="--", linewidth=1, label=f"overall {scores['lwlrap']:.3f}")
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("LWLRAP")
    axis.set_title(title)
    axis.legend(loc="lower right")
    _save(figure, path)


def plot_histories(histories: dict[int, pd.DataFrame], path: str | Path, low_res_epochs: int = 0) -> None:
    """Loss and LWLRAP per epoch for every fold, training (dashed) and validation (solid); the first
    `low_res_epochs` (trained and validated on low-resolution images, never kept) shaded."""
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
    if low_res_epochs:
        for axis in (loss_axis, score_axis):
            axis.axvspan(0.5, low_res_epochs + 0.5, color="#ddd", label="low resolution")
    for fold, history in sorted(histories.items()):
        epochs = history.epoch + 1
        line, = loss_axis.plot(epochs, history.val_loss, label=f"fold {fold}")
        loss_axis.plot(epochs, history.loss, linestyle="--", color=line.get_color())
        score_axis.plot(epochs, history.val_lwlrap, color=line.get_color(), label=f"fold {fold}")
        score_axis.plot(epochs, history.lwlrap, linestyle="--", color=line.get_color())
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss (dashed: training)")
    score_axis.set(xlabel="epoch", ylabel="LWLRAP", title="LWLRAP (dashed: training)", ylim=(0, 1.02))
    score_axis.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def plot_mel_grid(images: dict[str, np.ndarray], path: str | Path, title: str) -> None:
    """Log-mel images side by side (mel bands upward), one panel per name."""
    figure, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 2.8), squeeze=False)
    for axis, (name, image) in zip(axes[0], images.items()):
        axis.imshow(image, origin="lower", aspect="auto", cmap="magma")
        axis.set_title(name, fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=10, y=1.1, va="bottom")  # above panel titles of up to three lines
    _save(figure, path)


def plot_activity(by_hour: pd.DataFrame, by_date: pd.DataFrame, path: str | Path, max_sites: int = 8) -> None:
    """Per site (up to `max_sites`, the most active first), heat maps of detections per species by hour of day and
    by date (rfcx.prediction.activity tables); a note instead when no file name carried a time."""
    from rfcx.constants import SPECIES_COLUMNS

    sites = by_hour.groupby("site").detections.sum().sort_values(ascending=False).index[:max_sites].tolist()
    if not sites:
        figure, axis = plt.subplots(figsize=(6, 1.5))
        axis.axis("off")
        axis.text(0.5, 0.5, "No activity to show: no detection, or no file name carries its start time\n"
                  "(AudioMoth / Song Meter YYYYMMDD_HHMMSS)", ha="center", va="center", fontsize=9)
        _save(figure, path)
        return
    species = sorted(by_hour.species_id.unique())
    dates = sorted(by_date.date.unique())
    figure, axes = plt.subplots(len(sites), 2, figsize=(12, 0.4 * len(species) * len(sites) + 1.5),
                                squeeze=False, gridspec_kw={"width_ratios": [24, max(len(dates), 4)]})
    for row, site in enumerate(sites):
        for column, (table, key, labels) in enumerate(((by_hour, "hour", list(range(24))),
                                                       (by_date, "date", dates))):
            grid = (table[table.site == site].pivot_table(index="species_id", columns=key, values="detections",
                                                          aggfunc="sum", fill_value=0)
                    .reindex(index=species, columns=labels, fill_value=0))
            axis = axes[row, column]
            image = axis.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
            axis.set_yticks(range(len(species)), [SPECIES_COLUMNS[int(s)] for s in species], fontsize=7)
            step = max(1, len(labels) // 12)
            axis.set_xticks(range(0, len(labels), step), [str(label) for label in labels[::step]], fontsize=7,
                            rotation=0 if key == "hour" else 45)
            axis.set_title(f"{site or '(root)'}: detections by {'hour of day' if key == 'hour' else 'date'}",
                           fontsize=8)
            figure.colorbar(image, ax=axis, fraction=0.03)
    figure.tight_layout()
    _save(figure, path)
