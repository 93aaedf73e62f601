"""Snakemake script: the submission of several model families, weighted on out-of-fold whole recordings."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.blend(dict(snakemake.params.oof), dict(snakemake.params.test), data_dir(snakemake),
                 snakemake.output.submission, snakemake.output.scores, snakemake.output.blend,
                 step=snakemake.params.step)
