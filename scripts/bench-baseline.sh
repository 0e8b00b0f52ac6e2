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

# KiB of the server's own code resident past `shoal_startup_code_end`: code that ran but
# is not in build/startup-functions.txt, so the linker put it among the code that never
# runs, where every page it touches brings in its neighbours. A list made from older code
# names renamed functions that no longer exist and misses their new names: the binary then
# still links and `startup-order.sh --check` finds most names, but the baseline grows by
# megabytes (3 Dec: 7.3 MB, 2.7 MB of it code past the list; 4.9 MB once regenerated).
# The end marker's address in the binary (empty when it has none), read once: it is the
# same in every run.
list_end="$(nm --defined-only "$BIN" 2>/dev/null | awk '$3 == "shoal_startup_code_end" {print $1}')"
unlisted_code_kib() {
    python3 - "$1" "$BIN" "$list_end" <<'PY'
import struct, sys
pid, binary, marker = sys.argv[1], sys.argv[2], sys.argv[3]
end = int(marker, 16) if marker else None
maps = [l.split() for l in open(f"/proc/{pid}/maps") if l.rstrip().endswith(binary)]
base = next((int(m[0].split("-")[0], 16) for m in maps if int(m[2], 16) == 0), None)
text = next((tuple(int(x, 16) for x in m[0].split("-")) for m in maps if "x" in m[1]), None)
if end is None or base is None or text is None:
    print("?")
    sys.exit()
start, stop = max(base + end, text[0]) & ~4095, text[1]
with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
    pagemap.seek(start // 4096 * 8)
    entries = pagemap.read((stop - start) // 4096 * 8)
present = sum(1 for (e,) in struct.iter_unpack("<Q", entries) if e >> 63)
print(present * 4)
PY
}

echo "binary: $BIN ($(stat -c %s "$BIN") bytes)"
rss=() anon=() file=() pasts=()
for run in $(seq 1 "$RUNS"); do
    "$BIN" up -d -f "$work/shoal.yaml" >/dev/null
    sleep 3
    pid="$("$BIN" ls --format json | python3 -c 'import json,sys; print(next(s["pid"] for s in json.load(sys.stdin) if s["project"] == "baseline"))')"
    read -r r a f < <(awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, a, f}' "/proc/$pid/status")
    past="$(unlisted_code_kib "$pid")"
    "$BIN" down -f "$work/shoal.yaml" >/dev/null
    echo "run $run: VmRSS $r KB (anonymous $a KB, file-backed $f KB; code past the start-up list: $past KB)"
    rss+=("$r") anon+=("$a") file+=("$f") pasts+=("$past")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
echo "median of $RUNS: VmRSS $(median "${rss[@]}") KB (anonymous $(median "${anon[@]}") KB, file-backed $(median "${file[@]}") KB; code past the start-up list: $(median "${pasts[@]}") KB)"
past="$(median "${pasts[@]}")"
if [ "$past" != "?" ] && [ "$past" -gt 1024 ]; then
    echo "bench-baseline.sh: $past KB of code past the start-up list is resident: build/startup-functions.txt is stale; regenerate it (scripts/startup-order.sh) and rebuild"
fi
