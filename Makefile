# The two commands the README promises: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test bench train-lenet5 train-lenet5-plus clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Serves ./models (the bundled lenet5) with `python -m app`; LENET_* variables configure it.
serve: $(STAMP)
	LENET_HOST=$(HOST) LENET_PORT=$(PORT) exec $(BIN)/python -m app

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/load.py

# Reproduce the bundled models (needs MNIST: LENET_MNIST_PATH, --data, or the network).
train-lenet5: $(STAMP)
	$(BIN)/python -m training train --arch lenet5 --epochs 20 --batch-size 64 --lr-schedule cosine

train-lenet5-plus: $(STAMP)
	$(BIN)/python -m training train --arch lenet5-plus --epochs 30 --augment --lr-schedule cosine

clean:
	rm -rf $(VENV) .pytest_cache runs
