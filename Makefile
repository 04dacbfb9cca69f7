# Two commands for users: `make lab` and `make test`. Both set up .venv first (idempotent:
# a second run only checks that pyproject.toml has not changed since the last install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lab test unit notebooks lint data reproduce benchmark ablations clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (retina_edu)" >/dev/null
	@touch $@

lab: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(BIN)/python -m pytest tests/ -q
	$(BIN)/python -m pytest notebooks/ -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg

unit: setup
	$(BIN)/python -m pytest tests/ -q

notebooks: setup
	$(BIN)/python -m pytest notebooks/ -q --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg

lint: setup
	$(BIN)/ruff check retina_edu tests benchmarks notebooks
	$(BIN)/ruff format --check retina_edu tests benchmarks

data: setup
	$(BIN)/python -m retina_edu.data --force

# Re-train the shipped checkpoint (one thread, ~5 min) and compare it with data/checkpoints/.
reproduce: setup
	$(BIN)/python tools/shipped_checkpoint.py reproduce

# The figures in the README; run on an otherwise idle machine.
benchmark: setup
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/train_ap.py

ablations: setup
	$(BIN)/python benchmarks/ablations.py

clean:
	rm -rf $(VENV) data/synthetic runs .pytest_cache
