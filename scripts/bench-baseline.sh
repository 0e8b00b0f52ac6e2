#!/usr/bin/env bash
# Baseline memory of a running shoal: `shoal up -d` of a stack of one parked SDK-style
# subscriber, images from the compile cache (or precompiled), RSS read from
# /proc/PID/status 3 s later. Repeats RUNS times and prints every run and the medians.
#
#   scripts/bench-baseline.sh [BINARY] [RUNS]     # default target/release/shoal, 5 runs
#
# With a lean binary (built with --no-default-features) the image is precompiled first by
# target/release/shoal (the full build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(realpath "${1:-$ROOT/target/release/shoal}")"
RUNS="${2:-5}"
[ -x "$BIN" ] || { echo "bench-baseline.sh: error: $BIN missing; run cargo build --release first" >&2; exit 1; }

work="$(mktemp -d)"
trap '"$BIN" down -p baseline >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export SHOAL_DATA_DIR="$work/data" SHOAL_RUNTIME_DIR="$work/run"
image="$ROOT/compose-examples/images/idle_subscriber.wasm"
# A lean shoal cannot compile: it gets the image precompiled by the full build.
if ! "$BIN" images compile -o "$work/probe" "$image" >/dev/null 2>&1; then
    "$ROOT/target/release/shoal" images compile -o "$work" "$image" >/dev/null
    image="$work/idle_subscriber.cwasm"
fi
cat >"$work/shoal.yaml" <<EOF
name: baseline
containers:
  idle:
    image: $image
    capabilities: [messaging]
EOF
# The first start fills the compile cache; it is not measured.
"$BIN" up -d -f "$work/shoal.yaml" >/dev/null
"$BIN" down -f "$work/shoal.yaml" >/dev/null

echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"
rss=() anon=() file=()
for run in $(seq 1 "$RUNS"); do
    "$BIN" up -d -f "$work/shoal.yaml" >/dev/null
    sleep 3
    pid="$("$BIN" ls --format json | python3 -c 'import json,sys; print(next(s["pid"] for s in json.load(sys.stdin) if s["project"] == "baseline"))')"
    read -r r a f < <(awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, a, f}' "/proc/$pid/status")
    "$BIN" down -f "$work/shoal.yaml" >/dev/null
    echo "run $run: VmRSS $r KB (anonymous $a KB, file-backed $f KB)"
    rss+=("$r") anon+=("$a") file+=("$f")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
echo "median of $RUNS: VmRSS $(median "${rss[@]}") KB (anonymous $(median "${anon[@]}") KB, file-backed $(median "${file[@]}") KB)"
