"""Mixup of whole training batches, on the host in the data loader (numpy), with the targets mixed alongside.

Mixup needs the targets, which never enter the model, so it cannot be a layer of the model the way the other
augmentations are; a custom train step could do it on the device but differs per backend. The loader's batch is at
hand, mixing two batches of waveforms is one multiply-add per sample (cheap next to the log-mel and the backbone),
and the loader's seeded generator makes it deterministic whatever the number of workers.

Semantics. Each example i is mixed, with probability `p`, with a partner j drawn by a random permutation of the batch:
``x = lam * x_i + (1 - lam) * x_j`` with ``lam ~ Beta(alpha, alpha)`` folded to ``lam >= 0.5`` (the example stays the
dominant one). Targets are combined by union, not by the convex combination: a species calling in either clip is
calling in the mix, so a mixed target is 1 if either side is 1, known absent (0) only if both sides are known absent,
the larger value when both are known (soft pseudo-labels), and unknown (-1) when one side is unknown and the other is
not a sure 1 -- an unknown label never becomes a known one. The same rule applies to frame-wise targets (the two
clips' frames are aligned in time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mix_targets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of two target arrays with -1 = unknown (see the module docstring)."""
    both_known = (a >= 0) & (b >= 0)
    sure = (a >= 1) | (b >= 1)
    return np.where(sure, 1.0, np.where(both_known, np.maximum(a, b), -1.0)).astype(np.float32)


class Mixup:
    """Batch-level mixup: ``(waveforms, [targets, ...], rng) -> (mixed waveforms, [mixed targets, ...])``."""

    def __init__(self, p: float = 0.5, alpha: float = 0.4) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Mixup: p must be in [0, 1], got {p!r}")
        if alpha <= 0:
            raise ValueError(f"Mixup: alpha must be > 0, got {alpha!r}")
        self.p = float(p)
        self.alpha = float(alpha)

    def __call__(self, waveforms: np.ndarray, targets: Sequence[np.ndarray],
                 rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
        n = len(waveforms)
        partner = rng.permutation(n)
        lam = rng.beta(self.alpha, self.alpha, size=n)
        lam = np.maximum(lam, 1.0 - lam)
        mixed = (rng.random(n) < self.p) & (partner != np.arange(n))
        lam = np.where(mixed, lam, 1.0).astype(np.float32)
        shape = (n,) + (1,) * (waveforms.ndim - 1)
        out = lam.reshape(shape) * waveforms + (1.0 - lam).reshape(shape) * waveforms[partner]
        mixed_targets = []
        for target in targets:
            where = mixed.reshape((n,) + (1,) * (target.ndim - 1))
            mixed_targets.append(np.where(where, mix_targets(target, target[partner]), target).astype(np.float32))
        return out.astype(np.float32), mixed_targets
