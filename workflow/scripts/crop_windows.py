"""Snakemake script: cut training windows around the boxes."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.crop_windows(data_dir(snakemake), snakemake.input.folds, snakemake.output[0],
                        windows=snakemake.params.windows, seed=snakemake.params.seed)
