"""Snakemake script: fit the per-species calibration on the OOF predictions and score it cross-fitted."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.calibrate(snakemake.input.oof, snakemake.output.calibration, snakemake.output.scores,
                     method=snakemake.params.method, min_positives=snakemake.params.min_positives)
