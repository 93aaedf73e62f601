"""Snakemake script: training curves of every fold."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0]):
    stages.plot_training(snakemake.input.histories, snakemake.output[0],
                         snakemake.params.low_res_epochs)
