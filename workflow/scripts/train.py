"""Snakemake script: train one fold."""
from pathlib import Path

from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    stages.train(snakemake.input.windows, snakemake.input.cache, snakemake.input.index,
                 Path(snakemake.output.model).parent, config=dict(snakemake.params.run),
                 fold=int(snakemake.wildcards.fold))
