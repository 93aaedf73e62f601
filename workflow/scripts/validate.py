"""Snakemake script: validate the dataset before any expensive work."""
from rfcx.pipeline import stages
from rfcx.pipeline.job import data_dir
from rfcx.pipeline.runlog import logged

with logged(snakemake.log[0]):
    stages.validate(data_dir(snakemake), snakemake.output[0], decode_audio=snakemake.params.decode_audio)
