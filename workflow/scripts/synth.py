"""Snakemake script: generate the embedded synthetic dataset."""
from rfcx.runlog import logged
from rfcx.synth import generate_dataset

with logged(snakemake.log[0]):
    generate_dataset(snakemake.params.out_dir, scale=snakemake.params.scale, seed=snakemake.params.seed,
                     workers=snakemake.threads, progress=False)
