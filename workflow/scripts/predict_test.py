"""Snakemake script: sliding-window scores of every test recording with one fold's model."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    stages.predict_test(snakemake.input.model, snakemake.params.data_dir, snakemake.output.windows,
                        snakemake.output.recordings, features=snakemake.params.features,
                        window_seconds=snakemake.params.window_seconds, predict=snakemake.params.predict)
