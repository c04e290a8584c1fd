# Herald's two commands: `make run` brings the platform up, `make test` runs the whole suite.
# Both set up what they need first: Debian packages (as root), a virtualenv, pinned dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test drill bench lint format lock install system-packages clean

$(INSTALLED): requirements.lock
	$(PYTHON) platform/system_packages.py venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-input -r requirements.lock
	touch $@

install: $(INSTALLED)

# The whole high-availability cluster (platform/stack.py), migrated and seeded; Ctrl-C stops it.
run: $(INSTALLED)
	$(PYTHON) platform/system_packages.py postgres redis haproxy etcd patroni
	$(BIN)/python platform/stack.py up

# The campaign drills run here with 5,000 recipients each, to keep the suite within its time
# budget; `make drill` runs them at the full 20,000.
test: $(INSTALLED)
	$(PYTHON) platform/system_packages.py postgres redis chromium haproxy etcd patroni
	DRILL_CAMPAIGN_RECIPIENTS=$${DRILL_CAMPAIGN_RECIPIENTS:-5000} $(BIN)/python -m pytest $(PYTEST_ARGS)

# Throughput figures (bench/run.py runs every bench/*_bench.py on throwaway services).
bench: $(INSTALLED)
	$(PYTHON) platform/system_packages.py postgres redis wrk haproxy
	$(BIN)/python bench/run.py $(BENCH)

# The failure drills alone, on one cluster, then their results as a table.
drill: $(INSTALLED)
	$(PYTHON) platform/system_packages.py postgres redis haproxy etcd patroni
	$(BIN)/python -m pytest -m drill -p no:cacheprovider tests/drills $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve every pin from pyproject.toml (run after changing a dependency there).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --disable-pip-version-check ".[dev]"
	{ echo "# Every package Herald installs, transitive ones included, at the version the suite passed with."; \
	  echo "# \`make lock\` regenerates it from pyproject.toml; \`make\` installs exactly this."; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^herald'; } > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) var .pytest_cache
