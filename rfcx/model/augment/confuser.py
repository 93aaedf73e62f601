"""Confuser mixing (augmentation ``ConfuserMix``): train on tp windows with a false-positive sound added, instead of on
fp windows alone.

Why. On whole recordings most ranking errors come from confusers, sounds in a species' band that are not that species
(the train_fp boxes): a wrongly top-ranked species' best window often lies on an fp box. Windows centred on fp boxes,
trained on as all-negative examples (`windows.fp_window_fraction` alone), teach the detector to ignore them, but on a
fixed step budget they take their batch slots from the tp windows, and the calls are then learnt less well. Mixing
keeps every slot for a tp window and adds, with probability `p`, the audio
of a random fp-centred window of the training folds at a random gain: the detector sees the confuser beside a real call
and must score the call's species only.

How. Sources add in power (independent sounds), so a mel-power batch (``rfcx.data.mel_cache``) adds the confuser's mel
power and its mean square times the gain; a waveform batch adds the confuser's samples times the gain's square root.
Targets take the union with the confuser window's (``rfcx.model.augment.mixup.mix_targets``): a tp call that happens to
lie in the fp window is a positive of the mix too; everything else the fp window holds is known absent. The fp-centred
windows are then partners only: never standalone training examples, and (like every fp-centred window) never validated
on.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from rfcx.model.augment.mixup import mix_targets

__all__ = ["ConfuserMix", "ConfuserOverlay"]


def check_settings(p: float, gain_db: tuple[float, float]) -> None:
    """Raise ValueError unless `p` is a probability and `gain_db` a [low, high] range."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"confuser mix: p must be in [0, 1], got {p!r}")
    if len(gain_db) != 2 or gain_db[0] > gain_db[1]:
        raise ValueError(f"confuser mix: gain_db must be [low, high] with low <= high, got {list(gain_db)}")


@dataclass(frozen=True)
class ConfuserOverlay:
    """The configured augmentation (an ``augment:`` entry of type ConfuserMix), before a fold names its confusers:
    `bind` gives the ConfuserMix that the fold's data loader runs, first among its augmentations (the overlay stage,
    rfcx.model.augment.build), like OpenSoundscape's Overlay action in its preprocessor.

    Args:
        p: probability that a training window gets a confuser.
        gain_db: (low, high) range of the confuser's gain in dB, drawn uniformly per window (0 dB: as recorded).
    """

    p: float
    gain_db: tuple[float, float] = (-6.0, 0.0)

    def __post_init__(self) -> None:
        check_settings(self.p, self.gain_db)

    def bind(self, rows: np.ndarray, targets: np.ndarray, jitter_samples: int = 0) -> ConfuserMix:
        """The mixing of this fold: confusers drawn from cache `rows` (the training folds' fp-centred windows) with
        their `targets`, each crop jittered as the training windows are."""
        return ConfuserMix(rows, targets, self.p, tuple(self.gain_db), jitter_samples)


@dataclass(frozen=True)
class ConfuserMix:
    """Adds a random confuser window to each training example with probability `p`.

    Args:
        rows: cache rows of the fp-centred windows of the training folds (the confusers to draw from).
        targets: their (len(rows), 24) training targets.
        p: probability that an example gets a confuser.
        gain_db: (low, high) range of the confuser's gain in dB, drawn uniformly per example (0 dB: as recorded).
        jitter_samples: the confuser's crop is shifted by up to this many samples, as the training windows are.
    """

    rows: np.ndarray
    targets: np.ndarray
    p: float
    gain_db: tuple[float, float] = (-6.0, 0.0)
    jitter_samples: int = 0

    def __post_init__(self) -> None:
        check_settings(self.p, self.gain_db)
        if len(self.rows) == 0:
            raise ValueError("confuser mix: no fp-centred windows in the training folds to mix in "
                             "(set windows.fp_window_fraction above 0)")
        if len(self.rows) != len(self.targets):
            raise ValueError(f"confuser mix: {len(self.rows)} rows but {len(self.targets)} targets")

    def __call__(self, read: Callable[[np.ndarray, np.ndarray | None], dict[str, np.ndarray]],
                 inputs: dict[str, np.ndarray], targets: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Mix confusers into a batch: `inputs` {"waveform"} or {"power", "signal_power"}, `targets` (n, 24); `read`
        gives the same inputs for cache rows and crop jitters (``WindowBatches.read``). Returns new arrays; the ones
        passed in are not modified."""
        n = len(targets)
        picked = np.flatnonzero(rng.random(n) < self.p)
        partner = rng.integers(len(self.rows), size=len(picked))
        gain = 10.0 ** (rng.uniform(*self.gain_db, size=len(picked)) / 10.0)
        jitter = (rng.integers(-self.jitter_samples, self.jitter_samples + 1, size=len(picked))
                  if self.jitter_samples else None)
        if not len(picked):
            return inputs, targets
        confuser = read(self.rows[partner], jitter)
        mixed = {name: array.copy() for name, array in inputs.items()}
        for name, array in mixed.items():
            scale = np.sqrt(gain) if name == "waveform" else gain  # samples scale by amplitude, powers by power
            array[picked] += (scale.reshape((-1,) + (1,) * (array.ndim - 1)) * confuser[name]).astype(np.float32)
        mixed_targets = targets.copy()
        mixed_targets[picked] = mix_targets(targets[picked], self.targets[partner])
        return mixed, mixed_targets
