"""Snakemake script: score a fold's held-out windows with that fold's model."""
from rfcx.pipeline import stages
from rfcx.pipeline.gpu_slots import claim_gpus
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    stages.predict_oof(snakemake.input.model, snakemake.input.windows, snakemake.input.cache, snakemake.input.index,
                       snakemake.output[0], fold=int(snakemake.wildcards.fold), features=snakemake.params.features,
                       window_seconds=snakemake.params.window_seconds, batch_size=snakemake.params.batch_size,
                       crop_shifts_seconds=snakemake.params.crop_shifts_seconds)
