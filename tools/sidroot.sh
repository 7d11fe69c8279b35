#!/usr/bin/env bash
# Runs a command in the project's Debian sid root, for the Python versions this
# machine's pyenv lacks (3.14, 3.15: sid packages them, with their -dbg builds
# and CPython's own test suites).
#
#   tools/sidroot.sh CMD [ARGS...]   run CMD inside, in the current directory
#   tools/sidroot.sh                 only make sure the root exists
#   tools/sidroot.sh --without-libpython CMD [ARGS...]
#                                    run CMD where no shared libpython exists
#                                    (what a wheel must run on)
#
# The root is made once (debootstrap, a few minutes) in .sidroot/ at the top of
# the clone (gitignored; a dot folder so that Go's ./... skips it) and reused.
# Run as root. The Debian mirror is the one this machine's apt uses. Each run
# binds into the root, at the same paths: the clone, the host's Go (GOROOT and
# module cache: tests inside build with the host's Go), /proc and /dev. Those
# mounts live in a private mount namespace of this run only, so they vanish
# when the command ends, however it ends, and deleting .sidroot never reaches
# through them into the host.
set -euo pipefail

TOP="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$TOP/.sidroot"
PACKAGES=(
    python3.14 python3.14-dev python3.14-venv python3.14-dbg libpython3.14-testsuite
    python3.15 python3.15-dev python3.15-venv libpython3.15-testsuite
    gcc libc6-dev make ca-certificates
)

# The first Debian mirror (not the security archive) in this machine's apt
# sources, deb822 or one-line.
host_mirror() {
    local uri
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}')"
    [ -n "$uri" ] || uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i !~ /security/) {print $i; exit}}')"
    [ -n "$uri" ] || { echo "sidroot: no Debian mirror found in this machine's apt sources" >&2; exit 1; }
    echo "$uri"
}

# pip inside uses the host's configuration and certificate authorities.
copy_host_config() {
    cp /etc/resolv.conf "$1/etc/"
    if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$1/etc/"; fi
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"
        chroot "$1" update-ca-certificates >/dev/null
    fi
}

# Made in a side folder and renamed when complete: an interrupted creation is
# started again, never reused half-made.
create() {
    local partial="$ROOT.partial" start=$SECONDS
    if grep -q " $partial[/ ]" /proc/self/mounts; then
        echo "sidroot: $partial still has mounts; unmount them first" >&2; exit 1
    fi
    rm -rf "$partial"
    command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
    local mirror; mirror="$(host_mirror)"
    echo "sidroot: creating $ROOT from $mirror (a few minutes, once; log in $ROOT.log)"
    if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
            sid "$partial" "$mirror" >"$ROOT.log" 2>&1; then
        tail -n 30 "$ROOT.log" >&2
        exit 1
    fi
    copy_host_config "$partial"
    mv "$partial" "$ROOT"
    echo "sidroot: created in $((SECONDS - start)) s"
}

# A root made by an older version of this script gets the packages added since.
add_missing() {
    if ! chroot "$ROOT" dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
        cp /etc/resolv.conf "$ROOT/etc/"
        chroot "$ROOT" apt-get update -q
        chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}"
    fi
}

# Runs "$@" in the root; called inside the private mount namespace.
enter() {
    local goroot gomodcache
    goroot="$(go env GOROOT)"
    gomodcache="$(go env GOMODCACHE)"
    mount -t proc proc "$ROOT/proc"
    mount --rbind /dev "$ROOT/dev"
    for dir in "$TOP" "$goroot" "$gomodcache"; do
        mkdir -p "$ROOT$dir" "$dir"
        mount --bind "$dir" "$ROOT$dir"
    done
    cp /etc/resolv.conf "$ROOT/etc/"
    # An empty file bound over each shared libpython hides it from this run
    # only: the root keeps its libpython packages, which its -dev packages
    # (the headers every build here needs) depend on.
    if [ -n "${SIDROOT_WITHOUT_LIBPYTHON-}" ]; then
        local lib
        for lib in "$ROOT"/usr/lib/*/libpython3*.so*; do
            if [ ! -L "$lib" ]; then mount --bind /dev/null "$lib"; fi
        done
    fi
    # The host's Go settings (proxy, checksum database, toolchain) go along.
    local name
    for name in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GOFLAGS GOTOOLCHAIN GOMODCACHE; do
        export "$name=$(go env "$name")"
    done
    local cwd="$PWD"
    case "$cwd" in "$TOP"|"$TOP"/*) ;; *) cwd="$TOP" ;; esac
    exec chroot "$ROOT" env HOME=/root PATH="$goroot/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
        sh -c 'cd "$1" && shift && exec "$@"' sh "$cwd" "$@"
}

if [ "${1-}" = --without-libpython ]; then
    shift
    export SIDROOT_WITHOUT_LIBPYTHON=1
fi
if [ "${1-}" = --enter ]; then
    shift
    enter "$@"
fi
[ "$(id -u)" = 0 ] || { echo "sidroot: must run as root (debootstrap, chroot, mount)" >&2; exit 1; }
exec 9>"$ROOT.lock"  # one creation at a time
flock 9
[ -d "$ROOT" ] || create
add_missing
exec 9>&-
[ $# -gt 0 ] || exit 0
exec unshare --mount --propagation private "$0" --enter "$@"
