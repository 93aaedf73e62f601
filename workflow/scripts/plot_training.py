"""Snakemake script: training curves of every fold."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.plot_training(snakemake.input.histories, snakemake.output[0],
                         snakemake.params.low_res_epochs)
