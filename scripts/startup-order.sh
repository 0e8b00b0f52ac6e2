#!/usr/bin/env bash
# Regenerate build/startup-functions.txt (full build) or build/startup-functions-lean.txt
# (lean build, no compiler): the functions of shoal that run while a stack starts, runs and
# stops, in the order the linker should lay them out together.
#
# Why: the kernel maps a binary's code 64 KiB at a time around every page a process touches
# ("fault-around"), so code that runs once, scattered over a 12 MB text section, keeps ~7 MB
# resident. Laid out side by side, the same functions take ~2 MB. build.rs hands this list to
# the linker (`--symbol-ordering-file`) for release builds on x86_64 Linux, where rustc links
# with LLD; names that no longer exist are skipped, so a stale list costs memory, not a build.
#
#   scripts/startup-order.sh [BINARY]     (needs valgrind; default target/release/shoal)
#
# BINARY is a release build: the full one, or a lean one (`cargo build --release
# --no-default-features --target-dir target/lean` gives target/lean/release/shoal), whose
# images are then precompiled by target/release/shoal. Mangled names differ between the two
# builds (different features), hence two lists; build.rs picks the one for the build.
#
# Runs the release binary under callgrind through the paths a deployed stack takes: `config`,
# a foreground `up` of a publisher/subscriber stack, `up -d` (and its detached server), `ps`,
# `logs`, `stats`, `down`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v valgrind >/dev/null 2>&1 || { echo "startup-order.sh: error: valgrind not found (apt package valgrind)" >&2; exit 1; }
FULL="$ROOT/target/release/shoal"
BIN="$(realpath "${1:-$FULL}")"
[ -x "$BIN" ] || { echo "startup-order.sh: error: $BIN missing; run cargo build --release first" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SHOAL_DATA_DIR="$work/data" SHOAL_RUNTIME_DIR="$work/run"
images="$ROOT/compose-examples/images"
list=build/startup-functions.txt ext=wasm
if ! "$BIN" images compile -o "$work/probe" "$images/hello.wasm" >/dev/null 2>&1; then
    [ -x "$FULL" ] || { echo "startup-order.sh: error: a lean shoal needs $FULL to precompile its images" >&2; exit 1; }
    list=build/startup-functions-lean.txt ext=cwasm
    "$FULL" images compile -o "$work/images" "$images"/{idle_subscriber,seq-subscriber,seq-publisher,hello}.wasm >/dev/null
    images="$work/images"
fi
cat >"$work/shoal.yaml" <<EOF
name: order
containers:
  idle:
    image: $images/idle_subscriber.$ext
    capabilities: [messaging]
  sub:
    image: $images/seq-subscriber.$ext
    capabilities: [messaging]
  pub:
    image: $images/seq-publisher.$ext
    capabilities: [messaging, timers]
    env: {COUNT: "20", PERIOD_MS: "5"}
    depends_on: {sub: {condition: service_started}}
  hi:
    image: $images/hello.$ext
EOF
# Fill the compile cache first: a board loads images from it, it does not compile them.
"$BIN" config -q -f "$work/shoal.yaml" 2>/dev/null
"$BIN" up -d -f "$work/shoal.yaml" >/dev/null
"$BIN" down -f "$work/shoal.yaml" >/dev/null

grind=(valgrind --tool=callgrind --demangle=no --smc-check=all-non-file --trace-children=yes
    "--callgrind-out-file=$work/cg.%p")
"${grind[@]}" "$BIN" config -q -f "$work/shoal.yaml" 2>/dev/null
timeout -s INT 40 "${grind[@]}" "$BIN" up -f "$work/shoal.yaml" >/dev/null 2>&1 || true
"${grind[@]}" "$BIN" up -d -f "$work/shoal.yaml" >/dev/null 2>&1
sleep 5
for verb in ps logs "stats --no-stream"; do
    # shellcheck disable=SC2086
    timeout 60 "${grind[@]}" "$BIN" $verb -f "$work/shoal.yaml" >/dev/null 2>&1 || true
done
"${grind[@]}" "$BIN" down -f "$work/shoal.yaml" >/dev/null 2>&1
sleep 2

python3 - "$BIN" "$work"/cg.* >"$list" <<'EOF'
# Functions of the binary that ran (every function that ran has a `fn=` block with its own
# cost); the ones more runs saw come first. Ids are defined at their first mention, which
# may be a `cob=`/`cfn=` line, so names are read from every line.
import collections, re, subprocess, sys

binary, files = sys.argv[1], sys.argv[2:]
seen = collections.Counter()
for path in files:
    names = {"ob": {}, "fn": {}}
    current_object, ran = None, set()
    for line in open(path, errors="replace"):
        m = re.match(r"^c?(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, key, name = m.groups()
        if name:
            names[kind][key] = name
        if line.startswith("ob="):
            current_object = names["ob"].get(key)
        elif line.startswith("fn=") and current_object == binary:
            ran.add(names["fn"].get(key))
    seen.update(n for n in ran if n)
defined = set()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        defined.add(parts[2])
for name, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
    if name in defined:
        print(name)
EOF
echo "startup-order.sh: $(wc -l <"$list") functions in $list"
