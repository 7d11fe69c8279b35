# The README's commands. Each target installs what it needs into the project:
# one virtual environment per Python version (.venv-3.X), the Go tools from
# go.mod (gopy, goimports), and the Python build and test requirements from
# the package registry.
#
#   make demo   the seed documents' examples on gofutures + timing vs the stdlib
#   make test   Go vet/race tests, pytest on 3.11/3.12/3.13, CPython's suite on 3.13
#   make bench  gofutures against the stdlib, side by side, on 3.11 and 3.13
#               (a table each, and bench-results-3.X.json)
#   make stress pytest (first version) and CPython's suite (SUITE_VERSION)
#               STRESS_ROUNDS times with every core kept busy by a CPU hog,
#               the last round pinned to one core; one line per run

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Python versions the package is built and tested for; the first is the default.
VERSIONS ?= 3.11 3.12 3.13
MAIN_VERSION := $(firstword $(VERSIONS))
SUITE_VERSION ?= 3.13
BENCH_VERSIONS ?= 3.11 3.13

# python_for(X.Y): python X.Y from pyenv's versions folder, else from PATH if it
# really runs (a pyenv shim on PATH may refuse when the version isn't selected).
python_for = $(or $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(1).*/bin/python))),$(shell python$(1) -c 'import sys; print(sys.executable)' 2>/dev/null))
venv = .venv-$(1)
vpython = $(call venv,$(1))/bin/python

.PHONY: demo test bench stress go-test cpython-suite clean

# install-X.Y: a venv for Python X.Y with gofutures built and installed from
# this tree (pip runs setup.py, which runs pybind/build_native.py: go + gopy).
install-%:
	@py="$(call python_for,$*)"; \
	if [ -z "$$py" ]; then echo "error: Python $* not found (on PATH as python$* or under pyenv)"; exit 1; fi; \
	if [ ! -x $(call vpython,$*) ]; then echo "+ $$py -m venv $(call venv,$*)"; "$$py" -m venv $(call venv,$*); fi
	$(call vpython,$*) -m pip install -q --upgrade pip
	$(call vpython,$*) -m pip install -v ".[test]" 2>&1 | { grep -E '^ *\+ |native library ready|[Ee]rror' || true; }
	@$(call vpython,$*) -c "import gofutures, sys; print('gofutures installed for', sys.version.split()[0])"

demo: install-$(MAIN_VERSION)
	$(call vpython,$(MAIN_VERSION)) demo/demo.py

go-test:
	go vet ./gofutures/
	CGO_CFLAGS="-I$$($(call python_for,$(MAIN_VERSION)) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" go vet ./pybind/
	go test -race -count=1 ./gofutures/
	# A short fuzz of the frame reader: a worker's bytes must never crash the supervisor.
	# A count, not a duration: a duration races Go's fuzz coordinator at its end
	# (Go issue 75804: "context deadline exceeded" with no failing input).
	go test -run='^$$' -fuzz=FuzzReadFrame -fuzztime=200000x ./gofutures/

py-test-%: install-%
	cd tests && ../$(call vpython,$*) -m pytest -q -c ../pyproject.toml --rootdir .. .

cpython-suite: install-$(SUITE_VERSION)
	$(call vpython,$(SUITE_VERSION)) tests/cpython/run_suite.py --part all

bench: $(addprefix bench-,$(BENCH_VERSIONS))

bench-%: install-%
	$(call vpython,$*) bench/bench.py --json bench-results-$*.json

test: go-test $(addprefix py-test-,$(VERSIONS)) cpython-suite
	@echo "make test: all green"

STRESS_ROUNDS ?= 10

stress: install-$(MAIN_VERSION) install-$(SUITE_VERSION)
	$(call vpython,$(MAIN_VERSION)) tests/stress.py --rounds $(STRESS_ROUNDS) \
		--python $(call vpython,$(MAIN_VERSION)) --suite-python $(call vpython,$(SUITE_VERSION))

clean:
	rm -rf .build build .venv-* python/gofutures/_native stress-logs
