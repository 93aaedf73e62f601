"""Snakemake script: validate the dataset before any expensive work."""
from rfcx import stages
from rfcx.runlog import logged

with logged(snakemake.log[0]):
    stages.validate(snakemake.params.data_dir, snakemake.output[0], decode_audio=snakemake.params.decode_audio)
