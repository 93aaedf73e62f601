"""What a Snakemake job hands its script, read back in one place."""

from __future__ import annotations

from pathlib import Path


def data_dir(job) -> Path:
    """The dataset folder of a Snakemake job: the folder of its `csvs` input (the dataset's tables), which the
    workflow lists under rfcx.pipeline.config.data_dir's folder (common.smk's DATA); read back here rather than worked
    out again. (Importing rfcx.pipeline.config here would make it a code input of every rule,
    rfcx.pipeline.codedeps, and re-run finished work.)"""
    return Path(job.input.csvs[0]).parent
