#!/bin/bash
# Sourced by the one-call scripts for a lent GPU machine (benchmarks/gpu_check.sh, benchmarks/gpu_quality.sh): the
# JAX backend (set before Keras is first imported: Keras' default, TensorFlow, is not on that image), and the
# packages the image lacks, installed from the wheels benchmarks/gpu_wheels.sh downloaded here (carried as .whl/)
# into a folder put first on PYTHONPATH, only where one of the modules the caller names is missing.
#   GPU_ENV_MODULES   modules the caller needs (default: the bench's)
#   GPU_ENV_WHEELS    wheel folders to install from (default: .whl)
#   PYTHON, SITE      the interpreter (python3) and the install folder (/tmp/rfcx-site)
python=${PYTHON:-python3}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
modules=${GPU_ENV_MODULES:-keras, librosa, soundfile, colorednoise, jsonschema}
if ! "$python" -c "import $modules" 2>/dev/null; then
    wheels=()
    for folder in ${GPU_ENV_WHEELS:-.whl}; do
        compgen -G "$folder/*.whl" > /dev/null || {
            echo "cannot import one of: $modules, and no wheels in $folder/: run benchmarks/gpu_wheels.sh here first" >&2
            exit 1
        }
        wheels+=("$folder"/*.whl)
    done
    site=${SITE:-/tmp/rfcx-site}
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "${wheels[@]}"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

record_device() {
    # the time and the GPU (name, driver, memory) into $1/nvidia-smi.txt
    { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"; } \
        | tee "$1/nvidia-smi.txt"
}
