"""Snakemake script: one window's log-mel with and without each configured augmentation."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.plot_augmentations(snakemake.input.windows, snakemake.input.cache, snakemake.input.index,
                              snakemake.output[0], features=snakemake.params.features,
                              augment=snakemake.params.augment, window_seconds=snakemake.params.window_seconds,
                              seed=snakemake.params.seed)
