#!/bin/bash
# The Python packages that rfcx needs and the GPU machines' image lacks (it has JAX, PyTorch, NumPy, pandas,
# pyarrow, SciPy, scikit-learn, scikit-image, matplotlib, h5py, numba, ... but no Keras, librosa, soundfile or
# cffi, which soundfile loads libsndfile with), as
# CPython 3.12 manylinux wheels in .whl/ (git-ignored), for benchmarks/gpu_check.sh to install there offline.
# Same versions as requirements.txt and .venv. Run here, where pip can reach PyPI. .whl/workflow/ holds Snakemake
# and its dependencies for benchmarks/gpu_quality.sh (28 MB more; connection_pool has no wheel on PyPI and is built
# here from its source).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
mkdir -p "$dest"
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" \
    keras==3.15.1 namex==0.1.0 optree==0.20.0 \
    librosa==0.11.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 \
    platformdirs==4.14.9 colorednoise==2.2.0 \
    jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
mkdir -p "$dest/workflow"
python3 -m pip wheel --quiet --no-deps -w "$dest/workflow" connection_pool==0.0.3
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --find-links "$dest/workflow" -d "$dest/workflow" snakemake==9.27.1
for wheel in "$dest"/*.whl; do rm -f "$dest/workflow/$(basename "$wheel")"; done   # one copy of each
ls "$dest" "$dest/workflow"
du -sh "$dest" "$dest/workflow"
