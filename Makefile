# The front door: `make sim` runs the default closed loop, `make test` runs every test.
# Both create .venv and install aegis into it (editable, with test extras) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: sim test test-fast check clean

$(STAMP): setup.py setup.cfg package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

sim: $(STAMP)
	$(BIN)/aegis sim --out runs/sim

test: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q

check: $(STAMP)
	for config in hw_configs/*.yaml; do $(BIN)/aegis check $$config || exit 1; done

clean:
	rm -rf $(VENV) build install log runs *.egg-info
