#!/usr/bin/env bash
# 10,000 parked containers inside the address space of a 39-bit Raspberry Pi kernel
# (512 GiB), enforced with prlimit. With wasmtime's default memory settings (4 GiB + guards
# per linear memory) this fails after ~125 containers; with shoal's (see README: memory
# sizing) all 10,000 start.
#
#   scripts/bench-address-space.sh [MAX]        # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
max="${1:-10000}"
cargo build --release --quiet
limit=$((512 * 1024 * 1024 * 1024))
echo "address-space limit: $limit bytes (512 GiB), containers: $max"
prlimit --as="$limit" target/release/shoal bench density --max "$max" --idle-secs 0
