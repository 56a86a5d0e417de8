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

.PHONY: setup hf data run lint test lab browser-check bench clean-venv

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

test: setup hf lint
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# JupyterLab in headless Chromium: notebook 05's explorer redraws when a control changes. Debian's chromium and
# chromedriver are installed when missing (apt-get, as root); selenium comes from the [browser] extra.
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,browser]'
	touch $(BROWSER_STAMP)

browser-check: $(BROWSER_STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	$(PY) tests/browser_check.py $(if $(SCREENSHOT),--screenshot $(SCREENSHOT),)

bench: setup
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_moe_layer.py --preset cpu
	$(PY) benchmarks/dispatch_before_after.py
	$(PY) benchmarks/bench_studies.py

clean-venv:
	rm -rf $(VENV)
