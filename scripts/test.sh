#!/usr/bin/env bash
# Sets up the machine and runs every test in the workspace, then checks the
# protocol test vectors with an independent (Python) implementation.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
echo "test: target dir $CARGO_TARGET_DIR" >&2
# The test binaries carry the test-only fault hooks (node/tests/faults.rs);
# no shipped build does.
FEATURES=(--features senatus-node/fault-injection)
cargo build --workspace --all-targets --locked "${FEATURES[@]}"
cargo test --workspace --locked --no-fail-fast "${FEATURES[@]}" "$@"

# The outsider check: docs/PROTOCOL.md re-implemented with hashlib and a
# stock Ed25519 library, against docs/vectors/.
if ! command -v python3 >/dev/null 2>&1; then
    echo "setup: installing python3" >&2
    apt_install python3
fi
if ! python3 -c "import cryptography" 2>/dev/null; then
    # A pip-managed Python takes it from PyPI; Debian's own Python refuses
    # pip (PEP 668), so fall back to Debian's package.
    python3 -m pip install --quiet cryptography 2>/dev/null || apt_install python3-cryptography
    python3 -c "import cryptography" || { echo "test: python3 cannot import cryptography" >&2; exit 1; }
fi
python3 scripts/verify-vectors.py
