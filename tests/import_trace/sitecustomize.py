"""Loaded by every Python process whose PYTHONPATH starts with this folder (the workflow tests' run): when the
process exits, it writes which rfcx modules it had imported to $RFCX_IMPORT_TRACE/<script>.txt, so a test can check
each rule's code inputs against what its script really imported."""

import atexit
import os
import sys
from pathlib import Path


def _write_trace() -> None:
    folder = os.environ.get("RFCX_IMPORT_TRACE")
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if not folder or not script.startswith("tmp") or not script.endswith(".py"):
        return  # only Snakemake's copies of the workflow scripts: tmpXXXX.<script>.py
    name = script.removesuffix(".py").split(".", 1)[-1]
    modules = sorted(module for module in sys.modules if module == "rfcx" or module.startswith("rfcx."))
    with open(Path(folder) / f"{name}.txt", "a") as handle:
        handle.write("\n".join(modules) + "\n")


atexit.register(_write_trace)
