#!/usr/bin/env bash
# Fuzz shoal's four doors for untrusted bytes (tests/integration/fuzz*.rs):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [SEED]
# - compose files and images, through the library, for SECONDS each (default 300);
# - the guest ABI: stacks of guests making random host calls, through the real binary
#   (SHOAL_FUZZ_ABI_CASES stacks, default 40);
# - the control socket: random and mutated requests against a running stack
#   (SHOAL_FUZZ_SOCKET_CASES requests, default 5000).
# The seed is random unless given, and printed first: replay a run with the same SEED.
# Any panic, unclear error, host error or hang fails the run and leaves the input in
# target/fuzz-findings/. The normal test run (scripts/test.sh) runs every target on a fixed
# number of inputs from a fixed seed.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHOAL_FUZZ_SECS="${1:-300}"
seed="${2:-random}"
if [ "$seed" = random ]; then
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
fi
export SHOAL_FUZZ_SEED="$seed"
export SHOAL_FUZZ_ABI_CASES="${SHOAL_FUZZ_ABI_CASES:-40}"
export SHOAL_FUZZ_SOCKET_CASES="${SHOAL_FUZZ_SOCKET_CASES:-5000}"
export SHOAL_FUZZ_TRACE=1
echo "fuzz.sh: seed $SHOAL_FUZZ_SEED (replay: scripts/fuzz.sh $SHOAL_FUZZ_SECS $SHOAL_FUZZ_SEED)"
echo "fuzz.sh: ${SHOAL_FUZZ_SECS} s per library target, $SHOAL_FUZZ_ABI_CASES ABI stacks, $SHOAL_FUZZ_SOCKET_CASES socket requests"
cargo test --test integration fuzz -- --nocapture --test-threads 2
