#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs every test.
#
#   scripts/test.sh            # everything
#   FUZZ_SECONDS=0 scripts/test.sh   # skip the fuzz smoke run (local iteration only)
#
# Needs: cargo, node + npm (for the official @tars/* peers), and the TarsWeb v3.0.14 source
# tree kept beside the checkout (scripts/tarsweb.sh says where it looks). Installs: the npm
# peers into interop/node_modules, TarsWeb and its npm dependencies into target/tarsweb, and
# cargo-fuzz when missing.
#
# Starts a private MariaDB (scripts/mariadb.sh; apt-get installs mariadb-server when missing) in
# a temp dir on a free port for the database tests, exports its URL as TARS_TEST_MYSQL_URL and the
# script's path as TARS_TEST_MARIADB_SCRIPT, and stops it and removes the dir on exit. A system
# MariaDB on port 3306 is never touched.
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

step "TarsWeb v3.0.14, the operators' console (tars/tests/tarsweb.rs drives it)"
bash scripts/tarsweb.sh target/tarsweb
TARS_TARSWEB_DIR="$(pwd)/target/tarsweb"
export TARS_TARSWEB_DIR

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -j "$JOBS" -- -D warnings

step "private MariaDB for the database tests"
MARIADB_DIR=$(mktemp -d)
stop_mariadb() {
    bash scripts/mariadb.sh stop "$MARIADB_DIR" >/dev/null 2>&1 || true
    rm -rf "$MARIADB_DIR"
}
trap stop_mariadb EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
TARS_TEST_MYSQL_URL=$(bash scripts/mariadb.sh start "$MARIADB_DIR")
export TARS_TEST_MYSQL_URL
TARS_TEST_MARIADB_SCRIPT="$(pwd)/scripts/mariadb.sh"
export TARS_TEST_MARIADB_SCRIPT
echo "private MariaDB at ${TARS_TEST_MYSQL_URL/:tars2015@/:***@}"

step "release build of the tars binary (the README's first command; tars/tests/up.rs runs it)"
cargo build --release --bin tars -j "$JOBS"

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
