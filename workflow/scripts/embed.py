"""Snakemake script: embed every train and test recording on the grid, once (prints the model's licence)."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=1):
    stages.embed(data_dir(snakemake), snakemake.input.folds, dict(snakemake.output.items()),
                 settings=dict(snakemake.params.embedding), threads=snakemake.threads)
