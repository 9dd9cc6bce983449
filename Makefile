# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS ?= tensorflow jax torch
PYTEST_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: demo test test-one docs bench browser clean

$(STAMP): pyproject.toml constraints/test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints/test.txt -e '.[tensorflow,jax,torch,tf-keras,keras-hub,cli,test,examples,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/keras-inspect summary mobilenetv2

# The whole suite once per Keras backend. `make test TF_ENABLE_ONEDNN_OPTS=0` (as .ci/run does)
# runs TensorFlow as on a CPU without oneDNN, where channels_first convolutions are missing.
test: $(STAMP)
	@set -e; for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend$${TF_ENABLE_ONEDNN_OPTS:+ TF_ENABLE_ONEDNN_OPTS=$$TF_ENABLE_ONEDNN_OPTS} ==="; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS); \
	done

test-one: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The graph page's browser tests drive Debian's Chromium through Playwright (which downloads no
# browser of its own). Without it they skip and say why; this installs it where apt-get can.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium is installed: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "cannot install chromium here (needs root and apt-get): the browser tests will skip"; \
	fi

clean:
	rm -rf $(VENV) site build *.egg-info
