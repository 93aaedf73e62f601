"""Snakemake script: train one fold (stage 2 when the rule gives it pseudo-labelled windows too)."""
from pathlib import Path

from rfcx.pipeline import stages
from rfcx.pipeline.gpu_slots import claim_gpus
from rfcx.pipeline.runlog import logged

pseudo = snakemake.input.get("pseudo")
# claim_gpus: on a workstation, a GPU of its own for each concurrent job (before the backend starts)
with logged(snakemake.log[0], threads=snakemake.threads), claim_gpus(snakemake.resources.get("gpu", 0)):
    stages.train(snakemake.input.windows, snakemake.input.cache, snakemake.input.index,
                 Path(snakemake.output.model).parent, config=dict(snakemake.params.run),
                 fold=int(snakemake.wildcards.fold),
                 pseudo=(pseudo, snakemake.input.pseudo_cache, snakemake.input.pseudo_index) if pseudo else None)
