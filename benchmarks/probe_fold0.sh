#!/bin/bash
# One-fold probe: train fold 0 only, with config.yaml plus YAML overrides, into its own folder, and print the best
# validation LWLRAP, then the test LWLRAP of that one model when the dataset has test_truth.csv. Used for
# benchmarks/PROBES.md (cheaper than a whole `make quality` recipe). The validation windows are centred on labelled
# calls, so only the test score sees false alarms on background and confusers.
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
targets=(results/models/fold0/model.keras)
[ -f "$data/test_truth.csv" ] && targets+=(results/test/fold0.parquet)
"$python" -m snakemake "${targets[@]}" -s "$repo/Snakefile" --directory "$dir" --cores 2 \
    --configfile "$repo/config.yaml" "$dir/overrides.yaml" > "$dir/snakemake.log" 2>&1 \
    || { tail -n 20 "$dir/snakemake.log" >&2; echo "probe $name failed: see $dir/snakemake.log" >&2; exit 1; }
"$python" - "$dir/results" "$data/test_truth.csv" "$name" "$repo/config.yaml" "$dir/overrides.yaml" <<'PY'
import sys
from pathlib import Path
import pandas as pd
import yaml
from rfcx.pipeline.config import load_config
from rfcx.prediction.scoring import score_submission
results, truth_path, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = load_config(sys.argv[4], yaml.safe_load(Path(sys.argv[5]).read_text()))
history = pd.read_csv(results / "models/fold0/history.csv")
full_size = history[history["epoch"] >= config["train"]["low_res_epochs"]]  # the epochs the kept model comes from
best = full_size.loc[full_size["val_lwlrap"].idxmax()]
line = (f"{name}: best val LWLRAP {best['val_lwlrap']:.4f} at epoch {int(best['epoch']) + 1} of {len(history)}, "
        f"train LWLRAP {best['lwlrap']:.4f}")
if truth_path.exists():
    test = score_submission(pd.read_parquet(results / "test/fold0.parquet"), pd.read_csv(truth_path))
    line += f", test LWLRAP (fold 0 alone) {test['lwlrap']:.4f}"
print(line)
PY
