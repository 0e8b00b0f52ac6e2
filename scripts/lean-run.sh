#!/usr/bin/env bash
# The lean build (no compiler: what a board runs) is built and run, not only linted: build
# it into its own target folder (so it never replaces the full target/debug/shoal that the
# integration and kernel tests use), precompile three guests with the full build, and run
# them as one stack with the lean one: the subscriber must get all 20 messages in order.
#   bash scripts/lean-run.sh        (after `cargo test`, which builds the full binary)
# Prints `lean-run: ok (...)` with the time it took; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/seq-stack.sh
source scripts/lib/seq-stack.sh
started=$(date +%s)
target="${CARGO_TARGET_DIR:-target}"
full="$target/debug/shoal"
lean_dir="$target/lean"
die() { echo "lean-run: error: $*" >&2; exit 1; }
[ -x "$full" ] || die "$full not found: run cargo test (or cargo build) first"
cargo build --quiet --no-default-features --target-dir "$lean_dir"
lean="$lean_dir/debug/shoal"
work=$(mktemp -d)
trap 'SHOAL_RUNTIME_DIR="$work/run" "$lean" down -p lean >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export SHOAL_RUNTIME_DIR="$work/run" SHOAL_DATA_DIR="$work/data" NO_COLOR=1
seq_stack_precompile "$full" "$work" lean 20 >/dev/null
# A .wasm is refused by the lean build with a clear error (it has no compiler).
if "$lean" run compose-examples/images/hello.wasm >"$work/refused" 2>&1; then
    die "the lean build ran a .wasm: $(cat "$work/refused")"
fi
"$lean" up -d -f "$work/shoal.yaml" >/dev/null
for _ in $(seq 300); do
    "$lean" logs -p lean sub 2>/dev/null | grep -q "got 19" && break
    sleep 0.1
done
"$lean" logs -p lean >"$work/logs"
problem=$(seq_stack_verify "$work/logs" 20) || die "$problem: $(cat "$work/logs")"
"$lean" down -p lean >/dev/null
echo "lean-run: ok (built and ran the --no-default-features binary in $(( $(date +%s) - started )) s)"
