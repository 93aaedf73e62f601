"""Snakemake script: out-of-fold LWLRAP overall, per fold and per species (windows, and whole recordings when scored)."""
from rfcx.pipeline import stages
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.score_oof(snakemake.input.oof, snakemake.output.scores, snakemake.output.table,
                     snakemake.output.per_species, recording_paths=list(snakemake.input.recordings))
