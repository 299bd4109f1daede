# `make demo` and `make test` do all set-up from nothing: a .venv in the repository root, torch
# pinned to the CPU build first (constraints.txt says why), then vaekit with its dev extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vaekit-installed
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/inductor

.PHONY: install demo test test-slow lint bench bench-family data clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	rm -rf runs/demo
	$(BIN)/vaekit train --config configs/digits.yaml --quiet --out runs/demo
	$(BIN)/vaekit sample runs/demo --n 64 --seed 0 --out runs/demo/figures/samples.png
	$(BIN)/vaekit reconstruct runs/demo --n 16 --out runs/demo/figures/reconstructions.png
	$(BIN)/vaekit interpolate runs/demo --a 0 --b 5 --path spherical --out runs/demo/figures/interpolation.gif
	$(BIN)/vaekit traverse runs/demo --out runs/demo/figures/traversal.png
	$(BIN)/vaekit embed runs/demo --out runs/demo/figures/latent_map.png
	$(BIN)/vaekit evaluate runs/demo --k 500
	$(BIN)/vaekit report runs/demo --out runs/demo/report.html
	@echo "demo run folder: runs/demo (figures in runs/demo/figures, everything in runs/demo/report.html)"

test: install
	$(BIN)/python -m pytest -q --durations=20

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src tests bench examples

# Fashion-MNIST for the benchmarks comes from Debian's package (needs root); the loader finds it.
data:
	command -v apt-get >/dev/null && (apt-get install -y -qq dataset-fashion-mnist || \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist))

bench: install data
	$(BIN)/python bench/train_throughput.py --out bench/results/train_throughput.json

# The VAE family's figures (BENCHMARKS.md): about 1.5 hours on a 2-core CPU.
bench-family: install data
	$(BIN)/python bench/disentangle.py --samples 50000 --epochs 3 --seeds 0,1,2 --out bench/results/disentangle.json
	$(BIN)/python bench/family_nll.py --epochs 10 --k 1000 --out bench/results/family_nll.json
	$(BIN)/python bench/cvae_classes.py --epochs 10 --out bench/results/cvae_classes.json

clean:
	rm -rf $(VENV) .cache runs
