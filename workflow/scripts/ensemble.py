"""Snakemake script: ensemble the folds into the submission (calibrated when the run calibrates) and score it when
truth is known."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.ensemble(snakemake.input.folds, data_dir(snakemake), snakemake.output.submission,
                    snakemake.output.scores, method=snakemake.params.method,
                    calibration_path=snakemake.input.get("calibration"))
