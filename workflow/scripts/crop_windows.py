"""Snakemake script: cut training windows around the boxes."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import data_dir, logged

with logged(snakemake.log[0]):
    stages.crop_windows(data_dir(snakemake), snakemake.input.folds, snakemake.output[0],
                        windows=snakemake.params.windows, seed=snakemake.params.seed)
