#!/usr/bin/env bash
# The whole test suite: builds the guest images, then runs unit and integration tests.
# Run scripts/setup.sh once first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-guests.sh
cargo test --workspace --all-targets "$@"
# The lean build (no compiler, what boards run) is built and run on precompiled images, not
# only linted (issue 16; its own target folder, see the script for the time it adds).
bash scripts/lean-run.sh
