#!/bin/bash
# Issue #6's quality benchmark with a GPU budget, in one call of a lent GPU machine (JAX, no TensorFlow):
#   here, once:     benchmarks/gpu_wheels.sh                 # Keras, librosa, ... and Snakemake -> .whl/
#   on the device:  run(command="bash benchmarks/gpu_quality.sh", carry=[".whl"], timeout_s=600)
# Runs `rfcx quality` (the whole workflow per recipe: folds, windows, training, OOF and test scoring) on the hard
# synthetic data with benchmarks/gpu-quality.yaml over every recipe, in a scratch folder, and copies the tables,
# the JSON and each recipe's Snakemake and training logs into $OUT (or /tmp/rfcx-gpu-quality): not the models.
# Recipes: the default only (the reference recipe augments on the host, one clip at a time, and would take most of
# the call at this budget; its CPU figure on the same data and folds is in benchmarks/QUALITY.md).
#   GPU_QUALITY_SCALE (hard), GPU_QUALITY_RECIPES (default), GPU_QUALITY_SET (benchmarks/gpu-quality.yaml),
#   GPU_QUALITY_TIMEOUT_S (none), WORK (/tmp/rfcx-quality), OUT, PYTHON.
# Tested here on the CPU at tiny size with TensorFlow hidden (tests/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/rfcx-gpu-quality}
work=${WORK:-/tmp/rfcx-quality}
mkdir -p "$out"
GPU_ENV_MODULES="keras, librosa, soundfile, colorednoise, jsonschema, snakemake" GPU_ENV_WHEELS=".whl .whl/workflow" \
    source benchmarks/gpu_env.sh
record_device "$out"
started=$SECONDS
status=0
# GPU_QUALITY_TIMEOUT_S bounds the run (benchmarks/gpu_session.sh's time left) so that its logs are still copied.
limit=()
[ -n "${GPU_QUALITY_TIMEOUT_S:-}" ] && limit=(timeout -k 10 "$GPU_QUALITY_TIMEOUT_S")
"${limit[@]}" "$python" -m rfcx.cli quality --scale "${GPU_QUALITY_SCALE:-hard}" --recipes "${GPU_QUALITY_RECIPES:-default}" \
    --set "${GPU_QUALITY_SET:-benchmarks/gpu-quality.yaml}" --work-dir "$work" \
    --markdown "$out/QUALITY-gpu.md" --json "$out/quality-gpu.json" 2>&1 | tee "$out/quality-gpu.log" || status=$?
for recipe in "$work"/*/; do   # the logs, also of a failed run
    name=$(basename "$recipe")
    [ "$name" = data ] && continue
    mkdir -p "$out/$name/results"
    cp "$recipe/snakemake.log" "$out/$name/" 2>/dev/null || true
    cp -r "$recipe/results/logs" "$out/$name/results/" 2>/dev/null || true
done
echo "gpu_quality done in $((SECONDS - started)) s (exit $status)"
exit "$status"
