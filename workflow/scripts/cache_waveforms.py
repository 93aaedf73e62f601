"""Snakemake script: decode every training window once into the waveform cache."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    stages.build_cache(data_dir(snakemake), snakemake.input.windows, snakemake.output.cache,
                       snakemake.output.index, margin_seconds=snakemake.params.margin_seconds,
                       sample_rate=snakemake.params.sample_rate)
