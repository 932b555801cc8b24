#!/usr/bin/env bash
# Sourced by the other scripts: installs what the build needs (idempotent)
# and points cargo at a target directory shared across clones, so RocksDB
# is compiled once per machine rather than once per checkout.
set -euo pipefail

need_pkgs=()
command -v clang >/dev/null 2>&1 || need_pkgs+=(clang)
# bindgen (RocksDB bindings) loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    need_pkgs+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++)
# apt_install PKG...: installs Debian packages (as root, or through sudo),
# refreshing the package lists once per run.
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${SENATUS_APT_UPDATED:-}" ]; then
        $sudo apt-get update -qq
        SENATUS_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "setup: installing ${need_pkgs[*]}" >&2
    apt_install "${need_pkgs[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/senatus/target}"
mkdir -p "$CARGO_TARGET_DIR"
# Two cores: keep the link/compile parallelism the machine has.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
