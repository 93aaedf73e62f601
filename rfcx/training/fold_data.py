"""A fold's data: which windows it trains on, which it validates on, and the loaders that feed them.

Validation is fold `fold`'s windows centred on a call, as they are; training is the other folds' windows, cropped
at random and augmented in the loader as the training recipe says (rfcx.model.recipe). Windows centred on fp boxes
are never validated on, and with confuser mixing they are only mixed into training windows.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from rfcx.data.cache import StackedCache, WaveformCache
from rfcx.data.mel_cache import MelPowerCache
from rfcx.data.windows import WINDOW_COLUMNS
from rfcx.model.recipe import Recipe
from rfcx.training.loader import FrameBoxes, WindowBatches, window_targets
from rfcx.training.pseudo import pseudo_targets


def fold_datasets(windows: pd.DataFrame, cache: WaveformCache | StackedCache | MelPowerCache, config: dict[str, Any],
                  fold: int, recipe: Recipe | None = None, n_frames: int = 0, pad_to_batch: bool = False,
                  pseudo: pd.DataFrame | None = None) -> tuple[WindowBatches, WindowBatches]:
    """Training batches (shuffled, cropped at random and augmented in the loader as `recipe` says, other folds) and
    validation batches (fold `fold`, as is). `recipe` defaults to the config's, seeded for the fold. With
    `n_frames` (the sed head) each batch also carries frame-wise targets from the boxes.
    `pseudo` (stage 2): pseudo-labelled windows (rfcx.training.pseudo) trained on beside the other folds' windows, never
    validated on, so validation scores stay comparable with stage 1. Windows centred on fp boxes
    (windows.fp_window_fraction) are never validated on either, for the same reason; with a ConfuserMix augmentation
    they are mixed into the training windows (rfcx.model.augment.confuser) instead of trained on alone."""
    recipe = recipe or Recipe.from_config(config, config["seed"] + fold)
    train_cfg = config["train"]
    in_fold = windows.fold.to_numpy() == fold
    centred_on_fp = windows.source.to_numpy() == "fp"
    # validated on the calls alone: the windows an fp_window_fraction adds would make the score depend on it
    is_val = in_fold & ~centred_on_fp
    mixing = recipe.mixes_confusers
    is_train = ~in_fold & ~(centred_on_fp & mixing)  # with confuser mixing, fp-centred windows are partners only
    if not is_val.any() or not is_train.any():
        raise ValueError(f"fold {fold} leaves no training or no validation windows")
    targets = window_targets(windows, train_cfg["unlabelled"], train_cfg["labels"])
    validation_targets = window_targets(windows, "negative")
    if pseudo is not None:
        if (pseudo.fold.to_numpy() == fold).any():
            raise ValueError(f"pseudo-labelled windows of fold {fold}'s recordings would leak it into its training")
        windows = pd.concat([windows, pseudo[list(WINDOW_COLUMNS)]], ignore_index=True)
        extra = pseudo_targets(pseudo)
        targets, validation_targets = (np.concatenate([both, extra]) for both in (targets, validation_targets))
        is_val = np.concatenate([is_val, np.zeros(len(pseudo), dtype=bool)])
        is_train = np.concatenate([is_train, np.ones(len(pseudo), dtype=bool)])
        in_fold, centred_on_fp = (np.concatenate([both, np.zeros(len(pseudo), dtype=bool)])
                                  for both in (in_fold, centred_on_fp))
    boxes = {True: None, False: None}
    if n_frames:
        every = FrameBoxes.from_windows(windows, config["windows"]["window_seconds"], n_frames)
        boxes = {True: every.subset(np.flatnonzero(is_val)), False: every.subset(np.flatnonzero(is_train))}
    loader = {"workers": max(train_cfg["workers"], 1), "use_multiprocessing": False, "pad_to_batch": pad_to_batch}
    rows = windows.window_id.to_numpy()
    partners = ~in_fold & centred_on_fp
    if mixing and not partners.any():  # e.g. a dataset without train_fp rows: the default config still trains
        print(f"fold {fold}: no fp-centred windows in the training folds (windows.fp_window_fraction "
              f"{config['windows']['fp_window_fraction']}), so no confuser mixing", file=sys.stderr)
    train = WindowBatches(cache, rows[is_train], targets[is_train], train_cfg["batch_size"], shuffle=True,
                          seed=config["seed"] + fold, jitter_samples=recipe.geometry.jitter_samples,
                          augment=recipe.loader_augmentations(rows[partners], targets[partners]),
                          max_batches=train_cfg["steps_per_epoch"], frame_boxes=boxes[False], **loader)
    validation = WindowBatches(cache, rows[is_val], validation_targets[is_val], train_cfg["batch_size"],
                               frame_boxes=boxes[True], **loader)
    return train, validation
