"""rfcx: species detectors for rainforest audio in the Kaggle RFCx layout.

The package holds all the logic; the Snakemake workflow and the `rfcx` command line are thin layers over it.
"""

import os as _os

__version__ = "0.1.0"

#: TensorFlow's oneDNN kernels, on unless the user chose otherwise. TensorFlow turns them on by itself only on CPUs
#: with AVX-512 VNNI, BF16 or AMX; on the rest (AVX2: most cloud VMs, AMD EPYC and Ryzen, laptops) it trains with
#: Eigen's kernels, whose convolution gradients are slow: a ResNet50 training step takes markedly longer with them
#: (measurements in benchmarks/PROBES.md). TensorFlow reads the variable once, when it is first imported, hence here,
#: before any rfcx module imports Keras; `TF_ENABLE_ONEDNN_OPTS=0` in the environment keeps Eigen's kernels.
#: rfcx.pipeline.threads.thread_environment keeps the results deterministic with it.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
