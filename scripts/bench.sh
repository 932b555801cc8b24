#!/usr/bin/env bash
# Runs the benchmark (not a test) on this machine with a release build:
# a fresh local 5-validator testnet driven at concurrency 1, 16, 64 and 256,
# broker verifications/s on one core, and a 5-member etcd baseline in the
# same run. Prints a markdown report; append it to docs/BENCHMARKS.md.
#
# Usage: scripts/bench.sh [--secs N] [--levels 1,16,64,256] [--no-etcd]
# Run it on an otherwise idle machine: the numbers are the machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# The bench is a binary of its own (the validator links none of it); it
# starts the testnets with the `senatus` built beside it.
cargo build --locked --release -p senatus-node -p senatus-bench --bin senatus --bin senatus-bench
DIR="$(mktemp -d "${TMPDIR:-/tmp}/senatus-bench.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
"$CARGO_TARGET_DIR/release/senatus-bench" --dir "$DIR" "$@"
