"""Snakemake script: a stage-2 fold's pseudo-labelled windows from the stage-1 scores."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.pseudo_label(snakemake.input.scores, data_dir(snakemake), snakemake.input.folds, snakemake.output[0],
                        fold=int(snakemake.wildcards.fold), settings=snakemake.params.settings,
                        min_box_overlap=snakemake.params.min_box_overlap)
