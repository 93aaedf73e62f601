"""Writing results so that nothing is ever half-written: each file goes to a temporary name and is moved into place
in one step, so an interrupted run leaves either the old complete file or the new complete one."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it to `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as partial:
        frame.to_csv(partial, index=False)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as partial:
        frame.to_parquet(partial, index=False)


def write_json(data: Any, path: str | Path) -> None:
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in blocks: what names a model file whatever its mtime says (a retrained fold model,
    the embedding model that made a run's vectors)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
