"""Backend-specific switches, kept in one place.

The rest of rfcx is plain Keras 3 and runs on TensorFlow, JAX or PyTorch. The few things Keras does not abstract
(finding a GPU, making TensorFlow's kernels deterministic, mixed precision choice) live here, and this is the only
module allowed to import a backend library, lazily, for the backend in use.
"""

from __future__ import annotations

import functools
import os

import keras


@functools.cache
def gpu_count() -> int:
    """Number of GPUs visible to the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(device.platform == "gpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic kernels (same scores on CPU)."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def choose_precision(setting: str) -> str:
    """The dtype policy for a `train.mixed_precision` setting: `auto` is bfloat16 mixed precision on a GPU only
    (no loss scaling needed, unlike float16), plain float32 on the CPU where mixed precision is slower."""
    if setting == "auto":
        return "mixed_bfloat16" if gpu_count() else "float32"
    return "float32" if setting == "off" else setting


def backend_summary() -> str:
    """One line naming backend, Keras version and device, for logs and benchmark tables."""
    devices = f"{gpu_count()} GPU(s)" if gpu_count() else f"CPU ({os.cpu_count()} cores)"
    return f"keras {keras.__version__}, backend {keras.backend.backend()}, {devices}"
