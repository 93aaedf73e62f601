#!/bin/bash
# One-fold probe: train fold 0 only, with config.yaml plus YAML overrides, into its own folder, and print the best
# validation LWLRAP. Used for benchmarks/PROBES.md (cheaper than a whole `make quality` recipe: no predictions).
#   benchmarks/probe_fold0.sh NAME 'train: {learning_rate: 0.003}'      # -> probes/NAME/
# DATA=folder picks the dataset (default: the demo data `make demo` generated); PROBES=folder the output root;
# PYTHON=interpreter the environment (default: .venv's).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=$1 overrides=${2:-}
data=${DATA:-$repo/data/synthetic/demo-seed0}
dir=${PROBES:-$repo/probes}/$name
python=${PYTHON:-$repo/.venv/bin/python}
[ -d "$data/train" ] || { echo "no dataset at $data (run make demo first, or set DATA)" >&2; exit 1; }
mkdir -p "$dir"
printf 'data_dir: %s\ndetect: {input_dir: ""}\n%s\n' "$data" "$overrides" > "$dir/overrides.yaml"
"$python" -m snakemake results/models/fold0/model.keras -s "$repo/Snakefile" --directory "$dir" --cores 2 \
    --configfile "$repo/config.yaml" "$dir/overrides.yaml" > "$dir/snakemake.log" 2>&1 \
    || { tail -n 20 "$dir/snakemake.log" >&2; echo "probe $name failed: see $dir/snakemake.log" >&2; exit 1; }
"$python" - "$dir/results/models/fold0/history.csv" "$name" <<'PY'
import sys
import pandas as pd
history = pd.read_csv(sys.argv[1])
best = history.loc[history["val_lwlrap"].idxmax()]
print(f"{sys.argv[2]}: best val LWLRAP {best['val_lwlrap']:.4f} at epoch {int(best['epoch']) + 1} of {len(history)}, "
      f"train LWLRAP {best['lwlrap']:.4f}")
PY
