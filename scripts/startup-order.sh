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
# The list has two parts: first the functions a serving process ran after its stack was up
# and before it went down (the steady state: parked containers, messages, the control
# socket's requests), then, between the markers `shoal_startup_code_begin` and
# `shoal_startup_code_end`, every other function that ran (start-up, teardown, the client
# commands). Once its stack is up the server unmaps the pages between the markers
# (src/startup_code.rs). Callgrind splits each server's profile at the markers, which the
# server calls when its stack is up and when it starts to go down.
#
#   scripts/startup-order.sh [BINARY]          (needs valgrind; default target/release/shoal)
#   scripts/startup-order.sh --check [BINARY]  how much of the list BINARY still has (seconds)
#
# BINARY is a release build: the full one, or a lean one (`cargo build --release
# --no-default-features --target-dir target/lean` gives target/lean/release/shoal), whose
# images are then precompiled by target/release/shoal. Mangled names differ between the two
# builds (different features), hence two lists; build.rs picks the one for the build.
#
# Runs the release binary under callgrind through the paths a deployed stack takes: `config`,
# a foreground `up` of a publisher/subscriber stack, `up -d` (and its detached server), `ps`,
# `logs`, `stats`, `down`.
#
# `--check` compares the list with a binary built from the current code (with or without the
# list): the names of the list that the binary still defines, and the markers. Regenerate
# when it says so (it exits 1 below 90%, or without the markers): every merge renames some
# functions (LTO's local names, monomorphised symbols), and the functions whose names
# changed are then laid out nowhere in particular.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FULL="$ROOT/target/release/shoal"
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
BIN="$(realpath "${1:-$FULL}")"
[ -x "$BIN" ] || { echo "startup-order.sh: error: $BIN missing; run cargo build --release first" >&2; exit 1; }
if [ "$check" = 0 ]; then
    command -v valgrind >/dev/null 2>&1 || { echo "startup-order.sh: error: valgrind not found (apt package valgrind)" >&2; exit 1; }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SHOAL_DATA_DIR="$work/data" SHOAL_RUNTIME_DIR="$work/run"
images="$ROOT/compose-examples/images"
list=build/startup-functions.txt ext=wasm
if ! "$BIN" images compile -o "$work/probe" "$images/hello.wasm" >/dev/null 2>&1; then
    [ "$check" = 1 ] || [ -x "$FULL" ] || { echo "startup-order.sh: error: a lean shoal needs $FULL to precompile its images" >&2; exit 1; }
    list=build/startup-functions-lean.txt ext=cwasm
    [ "$check" = 1 ] || "$FULL" images compile -o "$work/images" "$images"/{idle_subscriber,seq-subscriber,seq-publisher,hello}.wasm >/dev/null
    images="$work/images"
fi

if [ "$check" = 1 ]; then
    python3 - "$BIN" "$list" <<'EOF'
import os, subprocess, sys
binary, path = sys.argv[1], sys.argv[2]
listed = [line.strip() for line in open(path) if line.strip()]
defined = set()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        defined.add(parts[2])
found = sum(name in defined for name in listed)
share = 100 * found / max(len(listed), 1)
missing = [m for m in ("shoal_startup_code_begin", "shoal_startup_code_end") if m not in listed or m not in defined]
print(f"startup-order.sh: {path}: {found:,} of {len(listed):,} listed functions ({share:.0f}%) are defined in {binary}")
if missing:
    print(f"startup-order.sh: {', '.join(missing)} missing from the list or the binary: the server keeps its start-up code mapped")
# src/libm_shim.rs keeps libm.so.6 out (0.55 MB of RSS); a new call to a libm function
# brings it back.
dynamic = subprocess.run(["readelf", "-dW", binary], capture_output=True, text=True).stdout
needs_libm = "[libm.so" in dynamic
if needs_libm:
    def symbols(*args):
        out = subprocess.run(["nm", "-D", *args], capture_output=True, text=True).stdout
        return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()}
    libm = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6") if os.path.exists(p)), None)
    from_libm = sorted(symbols("--undefined-only", binary) & symbols("--defined-only", libm)) if libm else []
    print(f"startup-order.sh: {binary} needs libm.so.6 again (~0.55 MB of RSS); define in src/libm_shim.rs what it takes from it: {' '.join(from_libm) or '(see nm -D)'}")
if share < 90 or missing:
    print(f"startup-order.sh: stale: regenerate it (scripts/startup-order.sh {binary}) and rebuild")
if share < 90 or missing or needs_libm:
    sys.exit(1)
print("startup-order.sh: current (90% or more of the names, markers in place, no libm.so.6)")
EOF
    exit
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

# A serving process's profile is cut in three where it calls the markers: start-up, steady
# state (the part that ends before `shoal_startup_code_end`), teardown.
grind=(valgrind --tool=callgrind --demangle=no --smc-check=all-non-file --trace-children=yes
    --dump-after=shoal_startup_code_begin --dump-before=shoal_startup_code_end
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

python3 - "$BIN" "$work"/cg.* >"$work/list" <<'EOF'
# Functions of the binary that ran (every function that ran has a `fn=` block with its own
# cost); the ones more runs saw come first. Ids are defined at their first mention, which
# may be a `cob=`/`cfn=` line, so names are read from every line. A part of a profile that
# callgrind dumped before `shoal_startup_code_end` is a steady state: its functions go
# first, the rest between the markers.
import collections, re, subprocess, sys

BEGIN, END = "shoal_startup_code_begin", "shoal_startup_code_end"
binary, files = sys.argv[1], sys.argv[2:]
seen, steady_seen = collections.Counter(), collections.Counter()
for path in files:
    names = {"ob": {}, "fn": {}}
    current_object, ran, steady = None, set(), False
    for line in open(path, errors="replace"):
        if line.startswith("desc: Trigger:"):
            steady = END in line
            continue
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
    ran.discard(None)
    (steady_seen if steady else seen).update(ran)
defined = set()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        defined.add(parts[2])
def ordered(counter):
    return [n for n, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) if n in defined and n not in (BEGIN, END)]
steady = ordered(steady_seen)
rest = [n for n in ordered(seen) if n not in steady_seen]
if not steady:
    sys.exit(f"startup-order.sh: error: no steady-state profile (is {BEGIN} in {binary}, and did the server reach it?)")
print("\n".join(steady + [BEGIN] + rest + [END]))
print(f"startup-order.sh: {len(steady)} steady-state functions, {len(rest)} start-up and other ones", file=sys.stderr)
EOF
mv "$work/list" "$list"
echo "startup-order.sh: $(wc -l <"$list") lines in $list"
