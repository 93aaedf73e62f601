"""Snakemake script: fit one fold's per-species probe on the other folds' embeddings."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    stages.train_probe(snakemake.input.vectors, snakemake.input.index, data_dir(snakemake), snakemake.input.folds,
                       snakemake.output[0], fold=int(snakemake.wildcards.fold), settings=dict(snakemake.params.probe))
