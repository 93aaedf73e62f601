"""Running a workflow step with its output in the rule's log file, and its error also on the console.

Snakemake only says "see the log" when a job fails; a user whose data has a corrupt file should read which file on
the screen, so the error's message is printed to the real stderr too (the full traceback stays in the log).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import Iterator

from rfcx.pipeline.allocator import keep_freed_memory
from rfcx.pipeline.threads import thread_environment


@contextlib.contextmanager
def logged(log_path: str | Path, threads: int | None = None) -> Iterator[None]:
    """Send stdout/stderr to `log_path` for the duration; on an exception, echo its message to the console.

    `threads` caps the numeric libraries' thread pools (``thread_environment``, set before TensorFlow/NumPy start
    them), so a job uses the cores Snakemake gave it and no more. Freed memory stays in the process
    (``rfcx.pipeline.allocator``): a CPU training step no longer re-faults gigabytes of pages.
    """
    keep_freed_memory()
    if threads:
        os.environ.update(thread_environment(threads))
    console = sys.__stderr__
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException as error:
            traceback.print_exc(file=log)
            print(f"\nrfcx: {type(error).__name__}: {error}\n(full log: {log_path})", file=console, flush=True)
            raise
