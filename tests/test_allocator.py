"""rfcx.pipeline.allocator: after keep_freed_memory(), large blocks freed and allocated again come back without new page
faults; without it, glibc maps and zeroes them afresh every time (what a CPU training step did with its tensors)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rfcx.pipeline.allocator import _glibc

CHILD = """
import ctypes, resource, sys
from rfcx.pipeline.allocator import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 * 2**20  # above the largest mmap threshold glibc adapts to (32 MB)

def round_trip():
    # what a tensor's life is to a C++ allocator: malloc, write every page, free (numpy would madvise huge pages)
    block = libc.malloc(SIZE)
    ctypes.memset(block, 1, SIZE)
    libc.free(block)

round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round_trip()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str, env: dict[str, str] | None = None) -> tuple[bool, int]:
    """(whether the allocator setting was applied, minor page faults of 20 rounds of a 64 MB block) in a fresh
    process, so this test process's own allocator is not what is measured."""
    import os

    result = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True,
                            env={**os.environ, **(env or {})})
    kept, faults = result.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(_glibc() is None, reason="mallopt is glibc's: elsewhere keep_freed_memory does nothing")
def test_freed_blocks_are_reused_without_new_page_faults() -> None:
    applied, kept_faults = page_faults("keep")
    _, default_faults = page_faults("default")
    assert applied
    # 20 x 64 MB of 4 kB pages is 327,680 faults when each block is mapped afresh
    assert default_faults > 200_000
    assert kept_faults < default_faults / 50


def test_the_c_librarys_own_behaviour_can_be_kept() -> None:
    applied, faults = page_faults("keep", {"RFCX_SYSTEM_MALLOC": "1"})
    assert not applied
    if _glibc() is not None:
        assert faults > 200_000
