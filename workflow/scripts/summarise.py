"""Snakemake script: the submission preview and the one-screen summary of scores."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0]):
    stages.summarise(snakemake.input.submission, snakemake.input.oof, snakemake.input.test,
                     snakemake.output.preview, snakemake.output.summary,
                     calibration_scores_path=snakemake.input.get("calibration_scores"),
                     oof_crops=snakemake.params.oof_crops)
