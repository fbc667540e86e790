# The two commands of the README. Both prepare the machine first (scripts/setup.sh).
.PHONY: setup up lint test test-fast test-drills drill drill-cluster

setup:
	@bash scripts/setup.sh

up: setup
	.venv/bin/eventflow up

# The lint gate (ruff: errors, import order, likely bugs, complexity <= 14; pyproject.toml), then the tests.
lint: setup
	.venv/bin/ruff check .

test: lint
	.venv/bin/pytest -m "not drill"

# The inner loop: the pure tests only (no Kafka, PostgreSQL, Spark or processes started), in seconds.
test-fast: lint
	.venv/bin/pytest -m "not services and not drill"

# The fault-drill tests left out of `make test` (pytest -m drill); the scripts below are longer still.
test-drills: setup
	.venv/bin/pytest -m drill

# Fault drills (not in `make test`; see drills/__init__.py). DRILL_ARGS="--events 50000 --kills 4" shortens them.
drill: setup
	.venv/bin/python -m drills crashes $(DRILL_ARGS)

drill-cluster: setup
	.venv/bin/python -m drills cluster $(DRILL_ARGS)
