# Two commands: `make run` (set up, prepare data, execute every notebook) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := moe-experiments
PROFILE ?= full
# The offline data mirror: $MOE_DATA_MIRROR when set, else ../shared/datasets when it exists (the rule of .ci/run),
# passed to every target (the pipeline, the tests, JupyterLab's kernels).
MOE_DATA_MIRROR ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)
ifneq ($(MOE_DATA_MIRROR),)
export MOE_DATA_MIRROR
endif

.PHONY: setup hf data run lint test lab lab-copies html browser-check bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $(STAMP)

# The optional extra for external and real pretrained models (transformers, accelerate, gguf): notebook 08 needs it,
# so make run installs it, and make test installs it so its tests run.
HF_STAMP := $(VENV)/.hf-installed
hf: $(HF_STAMP)

$(HF_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,hf]'
	touch $(HF_STAMP)

data: setup
	$(PY) -m moe_utils.datasets

run: data hf
	$(PY) -m moe_utils.pipeline --profile $(PROFILE)

lint: setup
	$(PY) -m ruff check moe_utils tests benchmarks notebooks
	$(PY) -m ruff format --check moe_utils tests benchmarks

# The executors' optional engines (Dask, submitit), so make test runs their tests on local clusters.
ENGINES_STAMP := $(VENV)/.engines-installed
$(ENGINES_STAMP): $(HF_STAMP)
	$(PY) -m pip install --quiet -e '.[dev,hf,dask,slurm]'
	touch $(ENGINES_STAMP)

test: setup hf $(ENGINES_STAMP) lint
	$(PY) -m pytest

# JupyterLab on working copies of the notebooks in lab/ (git-ignored), so exploring and re-running never write into
# tracked files: a copy is refreshed when its committed notebook changes, lab/figures/ starts from the committed
# tables (the explorers read them) and receives whatever the copies write. LAB_ARGS passes flags to JupyterLab.
LAB_DIR ?= lab
LAB_ARGS ?=
lab-copies:
	mkdir -p $(LAB_DIR)/figures
	@for nb in notebooks/*.ipynb; do \
		name=$$(basename $$nb); \
		if [ ! -e $(LAB_DIR)/$$name ] || [ $$nb -nt $(LAB_DIR)/.$$name.copied ]; then \
			cp $$nb $(LAB_DIR)/$$name && touch $(LAB_DIR)/.$$name.copied && echo "lab: copied $$name"; \
		fi; \
	done
	cp -u figures/* $(LAB_DIR)/figures/

lab: hf lab-copies
	MOE_FIGURES_DIR=$(abspath $(LAB_DIR)/figures) $(VENV)/bin/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_ARGS)

# The executed notebooks as HTML without their code, in html/ (git-ignored).
html: setup
	$(VENV)/bin/jupyter nbconvert --to html --no-input --output-dir html notebooks/*.ipynb

# JupyterLab in headless Chromium: notebook 05's explorer redraws when a control changes. Debian's chromium and
# chromedriver are installed when missing (apt-get, as root); selenium comes from the [browser] extra.
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,browser]'
	touch $(BROWSER_STAMP)

browser-check: $(BROWSER_STAMP) hf
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PY) tests/browser_check.py $(if $(SCREENSHOTS),--screenshots $(SCREENSHOTS),) $(if $(ONLY),--only $(ONLY),)

bench: setup
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_moe_layer.py --preset cpu
	$(PY) benchmarks/dispatch_before_after.py
	$(PY) benchmarks/bench_studies.py
	$(PY) benchmarks/bench_explorers.py

clean-venv:
	rm -rf $(VENV)
