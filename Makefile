# Two commands do everything on a fresh machine with Python 3.11+ and pip:
#   make demo   - create .venv, generate the demo dataset, run the whole workflow, print the scores
#   make test   - create .venv and run the test suite (includes a tiny end-to-end Snakemake run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test report bench-cache clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

bench-cache: $(STAMP)
	$(BIN)/rfcx bench-cache data/synthetic/demo-seed0

clean:
	rm -rf results logs .snakemake
