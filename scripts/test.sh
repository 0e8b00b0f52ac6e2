#!/usr/bin/env bash
# The whole test suite: builds the guest images, then runs unit and integration tests.
# Run scripts/setup.sh once first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-guests.sh
cargo test --workspace --all-targets "$@"
