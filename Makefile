# The two commands of the README. Both prepare the machine first (scripts/setup.sh).
.PHONY: setup up test

setup:
	@bash scripts/setup.sh

up: setup
	.venv/bin/eventflow up

test: setup
	.venv/bin/pytest
