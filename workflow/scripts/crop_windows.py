"""Snakemake script: cut training windows around the boxes."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0]):
    stages.crop_windows(snakemake.params.data_dir, snakemake.input.folds, snakemake.output[0],
                        windows=snakemake.params.windows, seed=snakemake.params.seed)
