#!/bin/bash
# cwarnings.sh PYTHON: compiles the binding's C files (pybind/*.c) with
# -Wall -Wextra -Werror against PYTHON's headers, as cgo would (the cgo
# export header they include is generated into a temporary folder first).
# Only the project's own C is checked: cgo's and the Go runtime's C are not
# ours to fix, which is why these flags are not in CGO_CFLAGS.
set -euo pipefail
python=${1:?usage: cwarnings.sh PYTHON}
cc=${CC:-cc}
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
objdir=$(mktemp -d)
trap 'rm -rf "$objdir"' EXIT
cd "$(dirname "$0")/../pybind"
# shellcheck disable=SC2046  # the cgo files' names have no spaces
go tool cgo -objdir "$objdir" -- -I"$include" $(go list -f '{{join .CgoFiles " "}}' .)
status=0
for f in *.c; do
    $cc -O2 -Wall -Wextra -Werror -I. -I"$include" -I"$objdir" -c -o /dev/null "$f" || status=1
done
exit $status
