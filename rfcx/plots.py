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
