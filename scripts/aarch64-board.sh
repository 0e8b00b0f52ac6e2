#!/usr/bin/env bash
# What a 64-bit Raspberry Pi runs, checked on this machine: the lean shoal (no compiler) built
# for aarch64-unknown-linux-gnu, images precompiled for it by the full build here, and a stack
# of them run under qemu-user. Prints the lean binary's size and the stack's output.
#
#   scripts/aarch64-board.sh          build, precompile, run (a few minutes the first time)
#
# Two settings make it cheap enough for CI (.ci/run):
#   SHOAL_BOARD_PROFILE=board-check   build the lean binary with Cargo.toml's `board-check`
#                                     profile (release without fat LTO; default: release)
#   SHOAL_BOARD_COMPILER=PATH         precompile the images with this (full) shoal instead of
#                                     building a release one: the debug shoal the test suite
#                                     built compiles the same code (same wasmtime, same settings)
#
# Needs, besides scripts/setup.sh: the Rust target aarch64-unknown-linux-gnu and the Debian
# packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user. The script installs
# them when it runs as root and they are missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/seq-stack.sh
source scripts/lib/seq-stack.sh
TARGET=aarch64-unknown-linux-gnu

die() {
    echo "aarch64-board.sh: error: $*" >&2
    exit 1
}

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
[ -d /usr/aarch64-linux-gnu/lib ] || missing+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
PROFILE="${SHOAL_BOARD_PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
echo "aarch64-board.sh: cargo build --profile $PROFILE --no-default-features --target $TARGET"
cargo build --profile "$PROFILE" --no-default-features --target "$TARGET"
compiler="${SHOAL_BOARD_COMPILER:-}"
if [ -z "$compiler" ]; then
    echo "aarch64-board.sh: cargo build --release (the full build, to precompile the images)"
    cargo build --release
    compiler="$TARGET_DIR/release/shoal"
fi
[ -x "$compiler" ] || die "no shoal to precompile the images with at $compiler"
bash scripts/build-guests.sh >/dev/null

lean="$TARGET_DIR/$TARGET/$PROFILE/shoal"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$lean" "$work/shoal" && strip -o "$work/shoal.stripped" "$lean" 2>/dev/null \
    || aarch64-linux-gnu-strip -o "$work/shoal.stripped" "$lean"
echo "lean aarch64 binary: $(stat -c %s "$lean") bytes, $(stat -c %s "$work/shoal.stripped") stripped"

mkdir -p "$work/board"
seq_stack_precompile "$compiler" "$work/board" board 50 --target "$TARGET"

qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
export SHOAL_DATA_DIR="$work/data" SHOAL_RUNTIME_DIR="$work/run"
"${qemu[@]}" "$lean" --version
"${qemu[@]}" "$lean" config -q -f "$work/board/shoal.yaml"
# The subscriber never ends by itself: stop the stack once the last message has arrived.
"${qemu[@]}" "$lean" up -v -f "$work/board/shoal.yaml" >"$work/up.log" 2>&1 &
up=$!
for _ in $(seq 1 600); do
    grep -q "sub | got 49" "$work/up.log" && break
    kill -0 "$up" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$up" 2>/dev/null || true
wait "$up" || true
cat "$work/up.log"
problem=$(seq_stack_verify "$work/up.log" 50) || die "$problem"
echo "aarch64-board.sh: the lean aarch64 shoal ran the precompiled stack under qemu-user"

# registry: the same image through an OCI registry. The full build pushes hello.wasm with
# an aarch64 .cwasm (`--platform linux/arm64`) to a private docker-registry on loopback;
# the lean aarch64 shoal, which has no compiler, pulls the .cwasm for its own platform
# and runs it by reference.
if command -v docker-registry >/dev/null 2>&1; then
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    mkdir -p "$work/registry"
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
        "$work/registry" "$port" >"$work/registry.yml"
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    registry=$!
    trap 'kill "$registry" 2>/dev/null; rm -rf "$work"' EXIT
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    ref="127.0.0.1:$port/board/hello:1"
    SHOAL_DATA_DIR="$work/full-data" "$compiler" images push --platform linux/arm64 \
        compose-examples/images/hello.wasm "$ref"
    "${qemu[@]}" "$lean" images pull "$ref" | tee "$work/pull.log"
    grep -q "linux/arm64" "$work/pull.log" || die "the lean shoal did not pull the linux/arm64 .cwasm"
    "${qemu[@]}" "$lean" run "$ref" >"$work/run.log" 2>&1 || { cat "$work/run.log"; die "running $ref failed"; }
    grep -q "Hello from a shoal container!" "$work/run.log" || die "hello pulled from the registry did not run"
    echo "aarch64-board.sh: the lean aarch64 shoal pulled its .cwasm from a registry and ran it"
else
    echo "aarch64-board.sh: docker-registry not installed (scripts/setup.sh); skipped the registry pull"
fi
