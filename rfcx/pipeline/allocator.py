"""Keep memory that a training step frees inside the process, instead of handing it back to the OS every step.

Why: glibc's malloc serves each allocation above its mmap threshold (128 kB to 32 MB) with a fresh ``mmap`` and
returns it with ``munmap`` when freed, and trims the heap's free top back to the OS. A ResNet50 step allocates and
frees gigabytes of activations and gradients (tens of MB each), so every step the kernel maps and zeroes those pages
anew: hundreds of thousands of minor page faults per CPU training step of ResNet50, seconds of system time. With mmap
and trimming off, the freed blocks are reused and the faults stop: the same step runs much faster, with identical
losses and a little more peak memory (measurements in benchmarks/PROBES.md). The cost of a page fault varies with a
VM host's load, so without this the same training runs at very different speeds from hour to hour.

Only glibc has these knobs (``mallopt``); elsewhere (macOS, musl) this does nothing. ``RFCX_SYSTEM_MALLOC=1`` keeps
the C library's own behaviour.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Free memory at the top of the heap beyond this is still returned to the OS: only what one step churns is kept.
TRIM_THRESHOLD_BYTES = 1 << 30
OPT_OUT = "RFCX_SYSTEM_MALLOC"


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has gnu_get_libc_version and mallopt), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Turn off glibc's mmap for large blocks and its heap trimming below 1 GB for this process, from now on;
    returns whether it did (False: not glibc, or opted out with RFCX_SYSTEM_MALLOC=1). Call it before the big
    allocations start (before training); blocks already mapped stay as they are."""
    if os.environ.get(OPT_OUT) == "1":
        return False
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
