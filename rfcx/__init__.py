"""rfcx: species detectors for rainforest audio in the Kaggle RFCx layout.

The package holds all the logic; the Snakemake workflow and the `rfcx` command line are thin layers over it.
"""

__version__ = "0.1.0"
