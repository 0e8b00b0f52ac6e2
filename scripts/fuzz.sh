#!/usr/bin/env bash
# Fuzz shoal's compose-file loader and image loading for a fixed budget (tests/integration/fuzz.rs).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [SEED]
# Default: 300 s per target (compose files, images), a seed from the clock. Prints each
# target's input count and seed; any panic, unclear error or hang fails the run and leaves
# the input in target/fuzz-findings/ (replay with SHOAL_FUZZ_SEED=<seed>).
# The normal test run (scripts/test.sh) runs the same targets on a fixed number of inputs
# from a fixed seed.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHOAL_FUZZ_SECS="${1:-300}"
export SHOAL_FUZZ_SEED="${2:-random}"
export SHOAL_FUZZ_TRACE=1
echo "fuzz.sh: ${SHOAL_FUZZ_SECS} s per target, seed $SHOAL_FUZZ_SEED"
cargo test --test integration fuzz:: -- --nocapture --test-threads 2
