"""Snakemake script: assign train recordings to folds."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.split_folds(data_dir(snakemake), snakemake.output[0], n_folds=snakemake.params.n_folds,
                       seed=snakemake.params.seed)
