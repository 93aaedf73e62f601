"""Snakemake script: a fold's held-out train recordings scored whole, as the test recordings are, by that fold's model."""
from rfcx.pipeline import stages
from rfcx.pipeline.gpu_slots import claim_gpus
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    stages.predict_oof_recordings(snakemake.input.model, data_dir(snakemake), snakemake.input.folds,
                                  snakemake.output[0], fold=int(snakemake.wildcards.fold),
                                  features=snakemake.params.features,
                                  window_seconds=snakemake.params.window_seconds, predict=snakemake.params.predict)
