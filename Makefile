# README command 1: `make demo` (install + distil BBC News with the embedded SmolLM2 teacher, CPU, < 15 minutes).
# README command 2: `make test` (the test suite, fast configuration).
# `make cards`: rebuild the example model cards in model_cards/ (the demo's student and a Banking77 pool-teacher run).
PYTHON ?= python

.PHONY: demo test benchmark lint cards

demo:
	bash scripts/demo.sh

test:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "torch==2.13.0"
	$(PYTHON) -m pip install -e ".[dev,peft,demo]"
	$(PYTHON) -m pytest -q -p no:cacheprovider

benchmark:
	$(PYTHON) benchmarks/policy.py

lint:
	ruff check hf_activekd tests examples benchmarks

cards:
	bash scripts/make_cards.sh
