# The cookbook's two commands: `make run` (execute every notebook, write runs/latest/summary.md)
# and `make test` (the test suite). Both install into .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default; GPU users: make install TORCH=torch (a CUDA build), or TORCH= to keep their own.
TORCH ?= torch==2.13.0
PROFILE ?= auto
PORT ?= 8888
VENV_FLAGS ?=
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test lab clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/data.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install -q "$(TORCH)"; fi
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	$(PY) -m pip install -q --no-deps -r requirements/data.txt
	touch $@

run: install
	$(PY) ci/run_notebooks.py --profile $(PROFILE)

test: install
	$(PY) -m pytest

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(PORT) --no-browser \
		$(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) runs .pytest_cache
