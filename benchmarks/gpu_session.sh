#!/bin/bash
# Issue #5's GPU figures and issue #6's GPU-budget quality run in ONE call of a lent GPU machine. A session's lease
# is 15 minutes of device time and a machine's start takes one or two of them, so there is room for one call of at
# most 10 minutes, not one per script:
#   here, once:     benchmarks/gpu_wheels.sh
#   on the device:  run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
# Runs benchmarks/gpu_check.sh (bounded by GPU_SESSION_CHECK_S, 330 s), then benchmarks/gpu_quality.sh with the time
# left of GPU_SESSION_TOTAL_S (560 s), each into its own folder, each whether or not the other failed. The device
# tool returns at most 8 files, so $OUT gets the two Markdown tables, the two JSON files, and everything else
# (logs, nvidia-smi) as one tarball, gpu-session.tgz. A phase stopped by its time limit still leaves its logs
# (training logs hold every epoch's validation LWLRAP and time), so an over-long run still says how far it got.
# Tested here on the CPU at tiny size with TensorFlow hidden (tests/test_gpu_check.py).
set -uo pipefail
cd "$(dirname "$0")/.."
final=${OUT:-/tmp/rfcx-gpu-session}
scratch=${GPU_SESSION_SCRATCH:-/tmp/rfcx-gpu-session-work}
total=${GPU_SESSION_TOTAL_S:-560}
check_limit=${GPU_SESSION_CHECK_S:-330}
rm -rf "$scratch/check" "$scratch/quality"   # an earlier run's files must not pass for this one's
mkdir -p "$final" "$scratch/check" "$scratch/quality"
# Every fold's job compiles the same ResNet50 step: JAX's persistent cache lets the second and third fold reuse it.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$scratch/jax-cache}
started=$SECONDS

OUT=$scratch/check timeout -k 10 "$check_limit" bash benchmarks/gpu_check.sh > "$scratch/check/session.log" 2>&1
check_status=$?
echo "gpu_check: exit $check_status after $((SECONDS - started)) s"
tail -n 40 "$scratch/check/session.log"

left=$((total - (SECONDS - started)))
if [ "$left" -gt 60 ]; then
    OUT=$scratch/quality GPU_QUALITY_TIMEOUT_S=$left bash benchmarks/gpu_quality.sh > "$scratch/quality/session.log" 2>&1
    quality_status=$?
else
    quality_status="skipped ($left s left)"
fi
echo "gpu_quality: exit $quality_status after $((SECONDS - started)) s"
tail -n 40 "$scratch/quality/session.log" 2>/dev/null

for file in check/gpu-bench.md check/gpu-bench.json quality/QUALITY-gpu.md quality/quality-gpu.json; do
    [ -f "$scratch/$file" ] && cp "$scratch/$file" "$final/"
done
tar -czf "$final/gpu-session.tgz" -C "$scratch" --exclude=jax-cache check quality
echo "gpu_session done in $((SECONDS - started)) s: $(ls "$final" | tr '\n' ' ')"
[ "$check_status" = 0 ] && [ "$quality_status" = 0 ]
