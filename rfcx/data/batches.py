"""Batches of a fixed size: a short batch filled up with rows that change nothing.

Both training (data-parallel batches that must split evenly over devices) and prediction (every batch the size the
model was traced for) pad; what the padding holds is decided here once.
"""

from __future__ import annotations

import numpy as np


def pad_rows(array: np.ndarray, size: int, value: float) -> np.ndarray:
    """`array` with rows of `value` appended up to `size` rows (unchanged when it has that many already)."""
    extra = size - len(array)
    if extra <= 0:
        return array
    return np.concatenate([array, np.full((extra, *array.shape[1:]), value, dtype=array.dtype)])


def padded_batch(inputs: dict[str, np.ndarray], targets: list[np.ndarray],
                 size: int) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """A short batch filled up to `size` with silent windows (every input zero) whose every target is unknown (-1):
    the masked losses give them zero loss and LWLRAP counts no positive in them, so they change no gradient and no
    score. Data-parallel training needs it where every batch must split evenly over the devices (JAX shards batches,
    it cannot split a short last batch unevenly as TensorFlow does)."""
    return ({name: pad_rows(array, size, 0.0) for name, array in inputs.items()},
            [pad_rows(target, size, -1.0) for target in targets])
