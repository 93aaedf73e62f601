"""How many threads a job's numeric libraries may start: the thread policy of training, prediction and the benchmarks.

A job runs on the cores Snakemake (or SLURM, or taskset) gave it and no more; TensorFlow, OpenMP and the BLAS
libraries each start their own pool, and read its size from the environment once, as they start.
"""

from __future__ import annotations

import os


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that cap TensorFlow's, OpenMP's and the BLAS libraries' thread pools at `threads`;
    they take effect only in a process that sets them before those libraries start.

    TensorFlow gets one inter-op thread while its oneDNN kernels are on (the default, set in rfcx/__init__.py):
    oneDNN ops launched from two inter-op threads at once parallelise differently from one process to the next, and
    the same training on 2 cores ended with weights differing by up to 1e-2 after 8 steps; with one, every process
    gave identical weights (7 of 7), at about the same speed (0.87-0.96 s against 0.83-0.87 s per ResNet50 step).
    With Eigen's kernels (``TF_ENABLE_ONEDNN_OPTS=0``) it keeps two from 2 cores up: with one, a block's shortcut and
    branch run one after the other, and a step took ~25% longer (684 vs 540 ms, side by side on 2 cores).
    """
    pools = {variable: str(threads) for variable in
             ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    inter_op = 2 if threads >= 2 and not onednn_enabled() else 1
    return {**pools, "TF_NUM_INTEROP_THREADS": str(inter_op)}


def model_job_threads(cores: int, gpus: int, gpu_threads: int) -> int:
    """Threads of one model job (a fold's prediction; see `training_threads` for training). With a GPU,
    `gpu_threads` (they feed the device; ``resources: gpu`` limits how many such jobs run). On CPUs alone, half the
    cores, so two jobs run side by side: two single-thread ResNet50 trainings make more steps per second together
    than one on two threads (measurements in benchmarks/PROBES.md)."""
    return gpu_threads if gpus else max(1, cores // 2)


def training_threads(cores: int, gpus: int, gpu_threads: int, fold: int, n_folds: int) -> int:
    """Threads of fold `fold`'s training: on CPUs the folds train in pairs on half the cores each
    (`model_job_threads`), and the last fold of an odd count, which has no partner, on all of them, so it does not
    run alone on half the machine."""
    if not gpus and n_folds % 2 and fold == n_folds - 1:
        return max(1, cores)
    return model_job_threads(cores, gpus, gpu_threads)


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (``TF_ENABLE_ONEDNN_OPTS``, which rfcx defaults to
    on): any value but 0 or false, as TensorFlow reads it."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")


def usable_cpu_count() -> int:
    """The CPUs this process may run on (its affinity: a SLURM job's or taskset's share), not the machine's count;
    the machine's count where the platform cannot tell (macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
