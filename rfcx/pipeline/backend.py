"""Backend-specific switches, kept in one place.

The rest of rfcx is plain Keras 3 and runs on TensorFlow, JAX or PyTorch. The few things Keras does not abstract
(finding a GPU, making TensorFlow's kernels deterministic, mixed precision choice) live here, and this is the only
module allowed to import a backend library, lazily, for the backend in use.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from typing import Iterator

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


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the models built inside the block, and restored after it,
    however the block ends (a benchmark builds a bfloat16 model beside float32 ones)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution_scope(kind: str, batch_size: int) -> Iterator[int]:
    """Where a model built, compiled and fitted inside runs: `none` on one device (the default device placement), or
    `data_parallel` on every visible GPU (every logical CPU device where there is no GPU), each with a copy of the
    weights and a slice of every batch of `batch_size` windows, gradients averaged across them. Yields the number of
    devices. TensorFlow uses tf.distribute.MirroredStrategy (which also splits a smaller last batch unevenly), JAX
    keras.distribution.DataParallel, which shards every batch evenly: training then pads short last batches with
    masked windows (rfcx.data.batches.padded_batch)."""
    if kind == "none":
        yield 1
        return
    if kind != "data_parallel":
        raise ValueError(f"unknown train.distribution {kind!r} (none | data_parallel)")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        _check_split(batch_size, len(devices))
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    elif backend == "jax":
        devices = keras.distribution.list_devices()  # the GPUs, or the CPU devices where there is none
        _check_split(batch_size, len(devices))
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise ValueError(f"train.distribution: data_parallel needs the tensorflow or jax backend, not {backend}")


def _check_split(batch_size: int, devices: int) -> None:
    if batch_size % devices:
        raise ValueError(f"a batch of {batch_size} windows cannot be split evenly over {devices} devices; "
                         f"use a train.batch_size that is a multiple of {devices}")


def backend_summary() -> str:
    """One line naming backend, Keras version and device, for logs and benchmark tables."""
    devices = f"{gpu_count()} GPU(s)" if gpu_count() else f"CPU ({os.cpu_count()} cores)"
    return f"keras {keras.__version__}, backend {keras.backend.backend()}, {devices}"


def backend_version() -> str:
    """The backend library and its version (``jax 0.11.2``), which a throughput figure depends on as much as on
    the device."""
    backend = keras.backend.backend()  # tensorflow, jax and torch are also the libraries' module names
    if backend not in ("tensorflow", "jax", "torch"):
        return backend
    return f"{backend} {importlib.import_module(backend).__version__}"


def accelerator_name() -> str:
    """The first GPU's model name as the backend reports it (``NVIDIA H200``), or "none"."""
    if not gpu_count():
        return "none"
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpu = tf.config.list_physical_devices("GPU")[0]
        return tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
    if backend == "jax":
        import jax

        return next(device.device_kind for device in jax.devices() if device.platform == "gpu")
    import torch

    return torch.cuda.get_device_name(0)
