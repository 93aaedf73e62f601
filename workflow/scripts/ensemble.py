"""Snakemake script: ensemble the folds into the submission and score it when truth is known."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0]):
    stages.ensemble(snakemake.input.folds, snakemake.params.data_dir, snakemake.output.submission,
                    snakemake.output.scores, method=snakemake.params.method)
