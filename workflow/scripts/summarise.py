"""Snakemake script: the submission preview and the one-screen summary of scores."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.summarise(snakemake.input.submission,
                     {family: snakemake.input[family] for family in snakemake.params.families},
                     snakemake.input.test, snakemake.output.preview, snakemake.output.summary,
                     calibration_scores_path=snakemake.input.get("calibration_scores"),
                     blend_path=snakemake.input.get("blend"), oof_crops=snakemake.params.oof_crops)
