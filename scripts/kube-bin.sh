#!/usr/bin/env bash
# Print the directory that holds the real Kubernetes control-plane binaries
# (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) for tests/realkube.
#
# Where they come from, first match wins:
#   1. $KUBE_BIN            - a directory you provide; it must hold all four binaries.
#   2. ../shared/kube/kube-bin.tar.xz beside the repo (override: $KUBE_BIN_ARCHIVE) -
#      unpacked once into .run/kube-bin/ and reused while the archive's sha256 matches
#      the stamp file .run/kube-bin/.archive.sha256.
#   3. the Kubernetes project's envtest binaries (kubernetes-sigs/controller-tools
#      envtest releases, version $ENVTEST_VERSION), downloaded into .run/envtest-<version>/
#      with a short timeout ($ENVTEST_BASE_URL overrides the release download base).
#      envtest ships only kube-apiserver, etcd and kubectl: there is NO kube-controller-manager
#      and NO kube-scheduler, so this script says so on stderr and tests/realkube refuses to
#      start unless asked for an API-server-only plane (controllers=False).
# If nothing works it exits 1 with one message naming what to set or install.
set -euo pipefail

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd)
ENVTEST_VERSION="${ENVTEST_VERSION:-1.33.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCHIVE="$(realpath -m "${KUBE_BIN_ARCHIVE:-$ROOT/../shared/kube/kube-bin.tar.xz}")"
RUN="$ROOT/.run"

missing_in() {  # the binaries not present (or not executable) in $1
    local dir="$1" b out=()
    for b in "${BINARIES[@]}"; do
        [ -x "$dir/$b" ] || out+=("$b")
    done
    echo "${out[*]:-}"
}

fail() {
    echo "kube-bin.sh: $*" >&2
    exit 1
}

# 1. KUBE_BIN
if [ -n "${KUBE_BIN:-}" ]; then
    miss="$(missing_in "$KUBE_BIN")"
    if [ -n "$miss" ]; then
        fail "KUBE_BIN=$KUBE_BIN lacks: $miss. Set KUBE_BIN to a directory holding kube-apiserver, kube-controller-manager, kube-scheduler and etcd, or unset it to use the archive $ARCHIVE."
    fi
    cd "$KUBE_BIN" && pwd
    exit 0
fi

# 2. the shared archive, unpacked once
if [ -f "$ARCHIVE" ]; then
    dest="$RUN/kube-bin"
    stamp="$dest/.archive.sha256"
    sum="$(sha256sum "$ARCHIVE" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -z "$(missing_in "$dest")" ]; then
        echo "$dest"
        exit 0
    fi
    mkdir -p "$RUN"
    # One unpacker at a time (parallel test sessions); re-check after getting the lock.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN/kube-bin.lock"
        flock 9
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -z "$(missing_in "$dest")" ]; then
            echo "$dest"
            exit 0
        fi
    fi
    tmp="$(mktemp -d "$RUN/kube-bin.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    tar -xJf "$ARCHIVE" -C "$tmp" || fail "cannot unpack $ARCHIVE (need tar with xz support)"
    # Accept the binaries at the top level or one directory down.
    src="$tmp"
    if [ -n "$(missing_in "$src")" ]; then
        found="$(find "$tmp" -name kube-apiserver -type f | head -n1)"
        [ -z "$found" ] || src="$(dirname "$found")"
    fi
    miss="$(missing_in "$src")"
    [ -z "$miss" ] || fail "archive $ARCHIVE lacks: $miss. Set KUBE_BIN to a directory holding kube-apiserver, kube-controller-manager, kube-scheduler and etcd."
    echo "$sum" > "$src/.archive.sha256"
    chmod 755 "$src"
    rm -rf "$dest"
    mv "$src" "$dest"
    echo "$dest"
    exit 0
fi

# 3. envtest download (only where the machine has internet)
dest="$RUN/envtest-$ENVTEST_VERSION"
if [ -x "$dest/kube-apiserver" ] && [ -x "$dest/etcd" ]; then
    echo "kube-bin.sh: warning: using envtest $ENVTEST_VERSION from $dest: it has no kube-controller-manager and no kube-scheduler (API server + etcd only)" >&2
    echo "$dest"
    exit 0
fi
base="${ENVTEST_BASE_URL:-https://github.com/kubernetes-sigs/controller-tools/releases/download}"
url="$base/envtest-v$ENVTEST_VERSION/envtest-v$ENVTEST_VERSION-linux-amd64.tar.gz"
if command -v curl >/dev/null 2>&1; then
    mkdir -p "$RUN"
    tmp="$(mktemp -d "$RUN/envtest.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    if curl -fsSL --connect-timeout 3 --max-time 120 -o "$tmp/envtest.tar.gz" "$url" 2>/dev/null \
            && tar -xzf "$tmp/envtest.tar.gz" -C "$tmp"; then
        found="$(find "$tmp" -name kube-apiserver -type f | head -n1)"
        bin="$(dirname "${found:-/nonexistent/x}")"
        if [ -n "$found" ] && [ -x "$bin/etcd" ]; then
            rm -rf "$dest"
            mv "$bin" "$dest"
            echo envtest > "$dest/.flavour"  # standard etcd: takes flags, not just a data dir
            echo "kube-bin.sh: warning: downloaded envtest $ENVTEST_VERSION into $dest: it has no kube-controller-manager and no kube-scheduler (API server + etcd only)" >&2
            echo "$dest"
            exit 0
        fi
    fi
fi

fail "no Kubernetes control-plane binaries: set KUBE_BIN to a directory holding kube-apiserver, kube-controller-manager, kube-scheduler and etcd, or put the archive at $ARCHIVE (envtest download from $url failed: no internet?)."
