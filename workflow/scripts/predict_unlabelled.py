"""Snakemake script: the stage-1 fold model's scores over the other folds' train recordings (for pseudo-labels)."""
from rfcx.pipeline import stages
from rfcx.pipeline.gpu_slots import claim_gpus
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    stages.predict_unlabelled(snakemake.input.model, data_dir(snakemake), snakemake.input.folds, snakemake.output[0],
                              fold=int(snakemake.wildcards.fold), features=snakemake.params.features,
                              window_seconds=snakemake.params.window_seconds,
                              batch_size=snakemake.params.batch_size)
