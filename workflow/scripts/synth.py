"""Snakemake script: generate the embedded synthetic dataset."""
from pathlib import Path

from rfcx.data.synth import generate_dataset
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    generate_dataset(Path(snakemake.output[0]).parent, scale=snakemake.params.scale, seed=snakemake.params.seed,
                     workers=snakemake.threads, progress=False)
