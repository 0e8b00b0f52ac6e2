#!/usr/bin/env bash
# Build every guest image and copy it into compose-examples/images/:
#   - the Rust guest workspace compose-examples/guests/ (cargo, target wasm32-wasip1)
#   - the C guests in compose-examples/guests/c/ (make; NAME.wasm and NAME.newlibc.wasm)
#   - the WAT guests in compose-examples/guests/wat/ (wat2wasm; misbehaviour no compiler emits)
# Incremental: cargo and make rebuild only what changed; files are copied only when different.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUESTS="$ROOT/compose-examples/guests"
IMAGES="$ROOT/compose-examples/images"

die() {
    echo "build-guests.sh: error: $*" >&2
    echo "build-guests.sh: hint: run scripts/setup.sh (as root) to install the guest toolchain" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 || die "cargo not found"
command -v rustc >/dev/null 2>&1 || die "rustc not found"
command -v clang >/dev/null 2>&1 || die "clang not found (apt package clang)"
command -v make >/dev/null 2>&1 || die "make not found"
command -v wat2wasm >/dev/null 2>&1 || die "wat2wasm not found (apt package wabt)"
command -v wasm-ld >/dev/null 2>&1 || command -v wasm-ld-14 >/dev/null 2>&1 \
    || die "wasm-ld not found (apt package lld)"
[ -f /usr/lib/wasm32-wasi/libc.a ] || die "Debian wasi-libc missing (apt package wasi-libc)"
builtins="$(clang --target=wasm32-wasi --print-libgcc-file-name)"
[ -f "$builtins" ] || die "compiler-rt builtins for wasm32 missing: $builtins (apt package libclang-rt-14-dev-wasm32)"
RUST_LIB="$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1/lib/self-contained"
[ -f "$RUST_LIB/libc.a" ] || die "Rust target wasm32-wasip1 missing (rustup target add wasm32-wasip1)"

# SDK guests are linked with --export-memory, which Debian 12's lld 14 lacks; the C Makefile
# then uses the wasm-ld bundled with the Rust toolchain.
sys_ld="$(command -v wasm-ld-14 || command -v wasm-ld)"
rust_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld/wasm-ld"
if ! "$sys_ld" --help 2>/dev/null | grep -q -- --export-memory && [ ! -x "$rust_ld" ]; then
    die "no wasm-ld with --export-memory: $sys_ld lacks it and $rust_ld is missing (rustup component rust-lld?)"
fi

echo "build-guests.sh: cargo build --release --target wasm32-wasip1 (in compose-examples/guests)"
# The guest workspace always uses its own target dir, never the host's.
(cd "$GUESTS" && env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip1 --quiet)

echo "build-guests.sh: make -C compose-examples/guests/c"
make -s -C "$GUESTS/c" -j"$(nproc 2>/dev/null || echo 2)"

echo "build-guests.sh: wat2wasm compose-examples/guests/wat/*.wat"
mkdir -p "$GUESTS/wat/out"
for w in "$GUESTS"/wat/*.wat; do
    out="$GUESTS/wat/out/$(basename "${w%.wat}").wasm"
    if [ ! -f "$out" ] || [ "$w" -nt "$out" ]; then
        wat2wasm "$w" -o "$out"
    fi
done

mkdir -p "$IMAGES"
copied=0
copy() {
    local src="$1" dst="$IMAGES/$(basename "$1")"
    if ! cmp -s "$src" "$dst" 2>/dev/null; then
        cp "$src" "$dst"
        copied=$((copied + 1))
    fi
}
for f in "$GUESTS"/target/wasm32-wasip1/release/*.wasm "$GUESTS"/c/out/*.wasm "$GUESTS"/wat/out/*.wasm; do
    copy "$f"
done
total=$(ls "$IMAGES"/*.wasm | wc -l)
echo "build-guests.sh: $total images in compose-examples/images ($copied updated)"
if command -v python3 >/dev/null 2>&1; then
    python3 "$ROOT/scripts/check-guest-images.py" >/dev/null \
        || { python3 "$ROOT/scripts/check-guest-images.py" >&2; die "an image has the wrong imports/exports"; }
    echo "build-guests.sh: image imports/exports checked (scripts/check-guest-images.py)"
fi
