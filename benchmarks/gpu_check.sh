#!/bin/bash
# Issue #5's GPU figures in one call of a lent GPU machine (one H100/H200; JAX or PyTorch, no TensorFlow):
#   here, once:     benchmarks/gpu_wheels.sh                 # what the image lacks (Keras, librosa, ...) -> .whl/
#   on the device:  run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# It generates the demo dataset (the same seed as make demo), then runs `rfcx bench --size gpu` with
# benchmarks/gpu.yaml over config.yaml: the input pipeline beside the reference generator, training throughput with
# live augmentation beside constant tensors (ResNet50 at the default input, bfloat16), and decode + windows +
# predict of 1,992 60 s test recordings (the demo's 60, cycled). Writes gpu-bench.{json,md,log} and nvidia-smi.txt
# into $OUT (or /tmp/rfcx-gpu); copy gpu-bench.md into benchmarks/RESULTS-GPU.md.
# Also runs on a CPU-only machine (KERAS_BACKEND=jax with .venv's JAX: GPU_CHECK_SIZE=tiny), which is how it is
# tested before device time is spent on it (tests/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/rfcx-gpu}
data=${DATA:-/tmp/rfcx-demo-seed0}
size=${GPU_CHECK_SIZE:-gpu}
settings=${GPU_CHECK_SET:-benchmarks/gpu.yaml}
mkdir -p "$out"
source benchmarks/gpu_env.sh   # JAX backend, and the wheels of .whl/ where Keras/librosa are missing
record_device "$out"
started=$SECONDS
if [ ! -f "$data/train_tp.csv" ]; then
    "$python" -m rfcx.cli synth --scale "${GPU_CHECK_SCALE:-demo}" --seed 0 --out "$data" --quiet
fi
echo "dataset ready in $((SECONDS - started)) s: $data"
"$python" -m rfcx.cli bench --size "$size" --config config.yaml --set "$settings" --data-dir "$data" \
    --json "$out/gpu-bench.json" --markdown "$out/gpu-bench.md" 2>&1 | tee "$out/gpu-bench.log"
echo "gpu_check done in $((SECONDS - started)) s"
