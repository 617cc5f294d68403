# The front door: `make sim` runs the default closed loop, `make test` runs every test, spread over the cores
# (pytest-xdist; tests/conftest.py keeps a module whose fixture builds something once on one worker).
# Both create .venv and install aegis into it (editable, with test extras) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: sim test test-fast check clean train-deps

$(STAMP): setup.py setup.cfg package.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

sim: $(STAMP)
	$(BIN)/aegis sim --out runs/sim
	@echo ""
	@echo "aegis is installed in $(VENV). Next: 'source $(VENV)/bin/activate' and then 'aegis --help',"
	@echo "or call it directly: $(BIN)/aegis replay runs/sim/bag --node filter, $(BIN)/aegis eval --episodes 4"

test: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" -q -n auto --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

# The [train] extra (aegis train, tests/test_training*.py): torch's CPU wheel. torch wants setuptools >= 77.0.3,
# colcon-core (the install-mode tests) < 80: pin both so neither is upgraded past the other.
train-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0 'setuptools>=77.0.3,<80'

check: $(STAMP)
	for config in hw_configs/*.yaml; do $(BIN)/aegis check $$config || exit 1; done

clean:
	rm -rf $(VENV) build install log runs *.egg-info
