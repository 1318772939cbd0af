#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: scripts/fuzz.sh [seconds-per-target]
# Uses a nightly toolchain when one is installed, otherwise the stable one with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags for the sanitizer build).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-20}"
export CARGO_BUILD_JOBS="${JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked -j "${JOBS:-2}"
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

for target in $("${fuzz[@]}" list); do
    echo "--- fuzz $target (${SECONDS_PER_TARGET}s)"
    # -rss_limit_mb keeps a decoder that allocates from an unchecked length from passing.
    "${fuzz[@]}" run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1024 -max_len=65536 \
        >"target/fuzz-$target.log" 2>&1 || { tail -50 "target/fuzz-$target.log"; echo "fuzz target $target failed" >&2; exit 1; }
    grep -E '^(Done|#[0-9]+.*DONE)' "target/fuzz-$target.log" | tail -1 || true
done
