"""One GPU per job on a workstation: Snakemake's `--resources gpu=N` limits how many GPU jobs run at once, but it
does not say which GPU each job should use (it sets no CUDA_VISIBLE_DEVICES), so N concurrent folds would all train
on GPU 0. A job claims free GPUs here, before the backend starts, and sees only those.

A claim is an exclusive `flock` on `<slots_dir>/gpu<i>.lock`, so it is released when the job ends, however it ends
(the kernel drops the lock of a killed process), and jobs of several Snakemake runs on the machine share the same
slots. Where CUDA_VISIBLE_DEVICES is already set (SLURM sets it for a job granted `--gpus`, or a user pins a run by
hand), it is left alone, as it is on a machine with no GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

#: Environment variables: the folder of the lock files, and the machine's GPU count (instead of `nvidia-smi -L`).
SLOTS_DIR_VARIABLE = "RFCX_GPU_SLOTS_DIR"
GPU_COUNT_VARIABLE = "RFCX_GPU_COUNT"


def default_slots_dir() -> Path:
    """Lock files shared by every run of this user on this machine (GPUs are the machine's, not a workflow's)."""
    if os.environ.get(SLOTS_DIR_VARIABLE):
        return Path(os.environ[SLOTS_DIR_VARIABLE])
    return Path(tempfile.gettempdir()) / f"rfcx-gpu-slots-{os.getuid()}"


def machine_gpu_count() -> int:
    """GPUs on this machine, from RFCX_GPU_COUNT or `nvidia-smi -L` (no backend is started to find out)."""
    if os.environ.get(GPU_COUNT_VARIABLE):
        return int(os.environ[GPU_COUNT_VARIABLE])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def _try_lock(path: Path) -> IO | None:
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def claim_gpus(count: int, *, n_gpus: int | None = None, slots_dir: str | Path | None = None,
               poll_seconds: float = 0.5) -> Iterator[list[int] | None]:
    """Hold `count` free GPUs of this machine for the duration, visible to this process (and its children) as
    CUDA_VISIBLE_DEVICES; waits while all are taken. Yields the GPU ids, or None where nothing was pinned: `count`
    is 0, the environment already chose the devices, or the machine has no GPU."""
    if count <= 0 or "CUDA_VISIBLE_DEVICES" in os.environ:
        yield None
        return
    total = machine_gpu_count() if n_gpus is None else n_gpus
    if total == 0:
        yield None
        return
    if count > total:
        raise ValueError(f"a job asks for {count} GPU(s) but this machine has {total}")
    folder = Path(slots_dir) if slots_dir is not None else default_slots_dir()
    folder.mkdir(parents=True, exist_ok=True)
    held: dict[int, IO] = {}
    waited = False
    try:
        while len(held) < count:
            for gpu in range(total):
                if gpu not in held and (handle := _try_lock(folder / f"gpu{gpu}.lock")) is not None:
                    held[gpu] = handle
                    if len(held) == count:
                        break
            if len(held) < count:
                # release partial claims so that two multi-GPU jobs cannot hold half each and wait for ever
                for handle in held.values():
                    handle.close()
                held.clear()
                if not waited:
                    print(f"rfcx: waiting for {count} free GPU(s) of {total} ({folder})", file=sys.stderr, flush=True)
                    waited = True
                time.sleep(poll_seconds)
        ids = sorted(held)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        print(f"rfcx: this job uses GPU {os.environ['CUDA_VISIBLE_DEVICES']} of {total}", file=sys.stderr, flush=True)
        try:
            yield ids
        finally:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    finally:
        for handle in held.values():
            handle.close()
