# Two commands for users: `make lab` and `make test`. Both set up .venv first (idempotent:
# a second run only checks that .venv works and that pyproject.toml has not changed since the
# last install).
#
#   make lab LAB_ARGS="--port 8890 --no-browser"   options for JupyterLab (as root, --allow-root is added)
#   make notebooks NB=notebooks/03_matching_and_encoding.ipynb   test one notebook under nbval
#   make PYTHON=/path/to/python3.12 setup           choose the interpreter (3.11, 3.12 or 3.13)
#   make site / make site-check                     the course site (docs/_build/html), checked in a browser

# A Python that runs and is 3.11-3.13 (a pyenv shim of a version that is not active does not run).
PY_OK = import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(firstword $(foreach p,python3.11 python3.12 python3.13 python3 python,\
	$(shell command -v $(p) >/dev/null 2>&1 && $(p) -c '$(PY_OK)' 2>/dev/null && echo $(p))))
INSTALL_PYTHON = install one (python.org; apt install python3.12-venv; brew install python@3.12) or name it: make PYTHON=/path/to/python3.12
NO_PYTHON = make: no Python 3.11, 3.12 or 3.13 found: $(INSTALL_PYTHON)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# .venv is usable when its Python runs, is 3.11-3.13 and has pip; anything else is half-made.
VENV_OK = $(BIN)/python -c '$(PY_OK)' >/dev/null 2>&1 && $(BIN)/python -m pip --version >/dev/null 2>&1
# JupyterLab refuses to start as root (containers, Colab-like machines) unless told it may.
LAB_ARGS ?=
ROOT_ARGS = $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
NB ?= notebooks/
SITE := docs/_build/html
SITE_STAMP := $(VENV)/.site-installed
NBVAL = --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: setup venv lab test unit notebooks lint data reproduce benchmark ablations site site-check clean

setup: venv $(STAMP)

# (Re)make .venv unless it is usable. A venv that `python -m venv` left without pip (Debian
# without python3.X-venv), or one made by an unsupported or removed Python, is rebuilt.
venv:
	@if ! { $(VENV_OK); }; then \
	  if [ -z "$(PYTHON)" ]; then echo "$(NO_PYTHON)"; exit 1; fi; \
	  $(PYTHON) -c '$(PY_OK)' 2>/dev/null || { echo "make: PYTHON=$(PYTHON) is not a Python 3.11, 3.12 or 3.13 that runs: $(INSTALL_PYTHON)"; exit 1; }; \
	  echo "make: creating $(VENV) with $$($(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); \
	    echo "make: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt install python3.X-venv for your version)"; exit 1; }; \
	fi

# The kernel is registered under the name and display name the notebooks store ("Python 3",
# python3): JupyterLab then opens them unmodified (tests/test_environment.py checks they agree).
$(STAMP): pyproject.toml
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $@

lab: setup
	$(BIN)/jupyter lab notebooks/ $(ROOT_ARGS) $(LAB_ARGS)

test: setup
	$(BIN)/python -m pytest tests/ -q
	$(BIN)/python -m pytest notebooks/ -q -p no:cacheprovider $(NBVAL)

unit: setup
	$(BIN)/python -m pytest tests/ -q

notebooks: setup
	$(BIN)/python -m pytest $(NB) -q $(NBVAL)

lint: setup
	$(BIN)/ruff check retina_edu tests benchmarks notebooks tools docs
	$(BIN)/ruff format --check retina_edu tests benchmarks tools docs

data: setup
	$(BIN)/python -m retina_edu.data --force

# Re-train the shipped checkpoint (one thread, ~5 min) and compare it with data/checkpoints/.
reproduce: setup
	$(BIN)/python tools/shipped_checkpoint.py reproduce

# The figures in the README; run on an otherwise idle machine.
benchmark: setup
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/train_ap.py
	$(BIN)/python benchmarks/loader.py

# The ablation study (hours on 2 cores; resumable): writes data/results/. See retina_edu/ablations.py.
ablations: setup
	$(BIN)/python -m retina_edu.ablations

# The course site from the stored notebooks (nothing is executed, nothing downloaded): README as
# the front page, one page per notebook, math by a local MathJax. Its tools are the [site] extra.
$(SITE_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -qq -e '.[dev,site]'
	@touch $@

site: setup $(SITE_STAMP)
	$(BIN)/sphinx-build -q -b html -c docs . $(SITE)
	@echo "site: $(SITE)/index.html"

# Every page in Debian's headless Chromium (apt-get install chromium-headless-shell): loads, no
# console errors, no request off this machine, figures decoded, math typeset, links resolve.
site-check: site
	$(BIN)/python tools/site_check.py --site $(SITE)

clean:
	rm -rf $(VENV) data/synthetic runs .pytest_cache
