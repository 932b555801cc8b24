#!/usr/bin/env bash
# Sets up the machine and runs the main job: a fresh 5-validator genesis
# ceremony, verified, then every validator's genesis lock checked at boot.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --locked -p senatus-node --bin senatus
SENATUS="$CARGO_TARGET_DIR/debug/senatus"
DIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/senatus-demo.XXXXXX")}"
echo "== genesis ceremony in $DIR"
"$SENATUS" genesis init --out "$DIR"
echo "== verify genesis"
"$SENATUS" genesis verify "$DIR"
echo "== boot-verify every validator's genesis lock"
for cfg in "$DIR"/node-*/node.toml; do
    "$SENATUS" node --config "$cfg" --check
done
