# The README's commands. Each target installs what it needs into the project:
# one virtual environment per Python version (.venv-3.X), the Go tools from
# go.mod (gopy, goimports), and the Python build and test requirements from
# the package registry.
#
#   make demo   the seed documents' examples on gofutures + timing vs the stdlib
#   make test   Go vet/race tests, pytest on 3.11 to 3.15, CPython's suite on 3.13 to 3.15
#   make bench  gofutures against the stdlib, side by side, on 3.11 and 3.13
#               (a table each, and bench-results-3.X.json)

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Python versions the package is built and tested for; the first is the default.
VERSIONS ?= 3.11 3.12 3.13 3.14 3.15
MAIN_VERSION := $(firstword $(VERSIONS))
SUITE_VERSIONS ?= 3.13 3.14 3.15
BENCH_VERSIONS ?= 3.11 3.13

# python_for(X.Y): python X.Y from pyenv's versions folder, else from PATH if it
# really runs (a pyenv shim on PATH may refuse when the version isn't selected).
python_for = $(or $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(1).*/bin/python))),$(shell python$(1) -c 'import sys; print(sys.executable)' 2>/dev/null))
venv = .venv-$(1)
vpython = $(call venv,$(1))/bin/python
# in_root(X.Y): empty where this machine has Python X.Y; otherwise the command
# that runs the rest of the recipe line in the project's Debian sid root, which
# has it (tools/sidroot.sh makes the root at its first use: pyenv cannot build
# 3.14 and 3.15 here).
in_root = $(if $(call python_for,$(1)),,$(CURDIR)/tools/sidroot.sh )

.PHONY: demo test bench go-test cpython-suite clean

# install-X.Y: a venv for Python X.Y with gofutures built and installed from
# this tree (pip runs setup.py, which runs pybind/build_native.py: go + gopy);
# venv-X.Y does it where Python X.Y runs.
install-%:
	$(call in_root,$*)$(MAKE) --no-print-directory venv-$*

venv-%:
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
	cd tests && $(call in_root,$*)$(CURDIR)/$(call vpython,$*) -m pytest -q -c ../pyproject.toml --rootdir .. .

cpython-suite: $(addprefix cpython-suite-,$(SUITE_VERSIONS))

cpython-suite-%: install-%
	$(call in_root,$*)$(call vpython,$*) tests/cpython/run_suite.py --part all

bench: $(addprefix bench-,$(BENCH_VERSIONS))

bench-%: install-%
	$(call in_root,$*)$(call vpython,$*) bench/bench.py --json bench-results-$*.json

test: go-test $(addprefix py-test-,$(VERSIONS)) $(addprefix cpython-suite-,$(SUITE_VERSIONS))
	@echo "make test: all green"

clean:
	rm -rf .build build .venv-* python/gofutures/_native  # keeps .sidroot (tools/sidroot.sh)
