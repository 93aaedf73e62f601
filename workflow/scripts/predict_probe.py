"""Snakemake script: one fold's probe on its held-out windows and recordings, and on the test recordings."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=1):
    stages.predict_probe(snakemake.input.probe, (snakemake.input.train_vectors, snakemake.input.train_index),
                         (snakemake.input.test_vectors, snakemake.input.test_index), data_dir(snakemake),
                         snakemake.input.folds, dict(snakemake.output.items()), fold=int(snakemake.wildcards.fold),
                         pooling=snakemake.params.pooling, min_box_overlap=snakemake.params.min_box_overlap)
