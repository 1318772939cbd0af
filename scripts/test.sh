#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs every test.
#
#   scripts/test.sh            # everything
#   FUZZ_SECONDS=0 scripts/test.sh   # skip the fuzz smoke run (local iteration only)
#
# Needs: cargo, node + npm (for the official @tars/* peers). Installs: the npm peers into
# interop/node_modules, and cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS="${JOBS:-2}"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"

step() { printf '\n==> %s\n' "$*"; }

step "npm peers (@tars/stream, @tars/rpc)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are required: the interop tests run the official TARS Node SDK" >&2
    exit 1
fi
npm ci --prefix interop --no-audit --no-fund --loglevel=error

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings

step "cargo test"
cargo test --workspace -j "$JOBS" 2>&1 | tee target/test-output.txt
if grep -q 'test result: FAILED' target/test-output.txt; then exit 1; fi

if [ "$FUZZ_SECONDS" != "0" ]; then
    step "fuzz smoke run (${FUZZ_SECONDS}s per target)"
    scripts/fuzz.sh "$FUZZ_SECONDS"
fi

# One closing line that counts every test above.
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
