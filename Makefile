# The two commands the README promises: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
GRPC_PORT ?= 8001
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: setup serve test bench gpu-check mnist train-lenet5 train-lenet5-read train-lenet5-plus-read train-line-reader \
	train-line-reader-more combine-lenet5-read train-lenet5-plus clean

setup: $(DEV)

# `make serve` needs only the runtime dependencies; `make test` adds the test tools on top.
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV)

# Serves ./models (the bundled lenet5) with `python -m app`; LENET_* variables configure it.
serve: $(RUNTIME)
	LENET_HOST=$(HOST) LENET_PORT=$(PORT) LENET_GRPC_PORT=$(GRPC_PORT) exec $(BIN)/python -m app

# Lint, format check and strict type check (settings in pyproject.toml) before the suite: any finding fails the run.
test: $(DEV)
	$(BIN)/ruff check app training tests bench
	$(BIN)/ruff format --check app training tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(DEV)
	$(BIN)/python bench/load.py

# The devices TensorFlow sees, and batches of 1, 64 and 256 on each checked against the CPU's answers, with images/s.
gpu-check: $(RUNTIME)
	$(BIN)/python -m app.devices

# mnist.npz into data/, the folder the compose files mount: keras' download, or `make mnist FROM=path`
# (an mnist.npz or a folder of the four IDX files) where there is no internet.
mnist: $(RUNTIME)
	$(BIN)/python -m training fetch-mnist --to data/mnist.npz $(if $(FROM),--from $(FROM))

# Reproduce the bundled models (needs MNIST: LENET_MNIST_PATH, --data, or the network).
train-lenet5: $(RUNTIME)
	$(BIN)/python -m training train --arch lenet5 --epochs 40 --batch-size 128 --optimizer sgd --learning-rate 0.05 \
		--lr-schedule cosine --weight-decay 5e-4 --augment --augment-rotation 8 --augment-shift 0.08 --augment-zoom 0.08 \
		--label-smoothing 0.1 --keep last --validation-split 0.02 --seed 0

# LeNet-5 for POST /read: as train-lenet5, plus 60,000 of the reader's own cuts (training/wrong_cuts.py).
train-lenet5-read: $(RUNTIME)
	$(BIN)/python -m training train --arch lenet5 --name lenet5-read --epochs 40 --batch-size 128 --optimizer sgd \
		--learning-rate 0.05 --lr-schedule cosine --weight-decay 5e-4 --augment --augment-rotation 8 --augment-shift 0.08 \
		--augment-zoom 0.08 --label-smoothing 0.1 --keep last --validation-split 0.02 --seed 0 --wrong-cuts 60000

# Our CNN trained as train-lenet5-read is (12 epochs); then both as one, with the line reader (a CTC model over whole
# number lines, training/line_reader.py), lenet5-read's next version (what /read uses).
train-lenet5-plus-read: $(RUNTIME)
	$(BIN)/python -m training train --arch lenet5-plus --name lenet5-plus-read --epochs 12 --batch-size 128 --augment \
		--lr-schedule cosine --keep last --validation-split 0.02 --seed 0 --wrong-cuts 60000

train-line-reader: $(RUNTIME)
	$(BIN)/python -m training line-reader --count 80000 --epochs 16 --seed 0 --out runs/line_reader.keras

# lenet5-read/6's line reader: v5's trained 4 epochs more on 80,000 new lines (seed 2) made by the current segmentation.
train-line-reader-more: $(RUNTIME)
	$(BIN)/python -m training line-reader --init models/lenet5-read/5 --count 80000 --epochs 4 --learning-rate 5e-4 \
		--seed 2 --out runs/line_reader.keras

combine-lenet5-read: $(RUNTIME)
	$(BIN)/python -m training combine models/lenet5-read/2 models/lenet5-plus-read/1 --line-reader runs/line_reader.keras \
		--name lenet5-read

train-lenet5-plus: $(RUNTIME)
	$(BIN)/python -m training train --arch lenet5-plus --epochs 30 --augment --lr-schedule cosine --keep last

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
