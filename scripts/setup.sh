#!/usr/bin/env bash
# Install what shoal's guest builds and bridge tests need on Debian 12:
#   clang + lld (wasm-ld) + make, Debian's wasi-libc sysroot, compiler-rt builtins for wasm32,
#   wabt (wat2wasm, for the hand-written hostile guests in compose-examples/guests/wat),
#   mosquitto (broker + clients, for the MQTT bridge tests; never started here), openssl (the
#   bridge TLS test makes its certificates with it), the real-kernel test packages below,
#   and Rust's wasm32-wasip1 target.
# Idempotent: skips apt work when every package is already installed. Starts no service.
set -euo pipefail

PKGS=(clang lld wasi-libc libclang-rt-14-dev-wasm32 make wabt mosquitto mosquitto-clients openssl)
# registry: the CNCF distribution registry and htpasswd (bcrypt), started by the registry
# tests on a free loopback port (never as a service).
PKGS+=(docker-registry apache2-utils)
# Real-kernel tests (scripts/kernel-tests.sh): qemu, Debian's kernel, busybox and cpio for the
# initramfs, libgpiod's tools, and (Debian 12's kernel has no gpio-sim) the headers and source
# of the same kernel to build the gpio-sim module from; the -amd64 meta packages keep image,
# headers and source at one version.
PKGS+=(qemu-system-x86 linux-image-amd64 linux-headers-amd64 linux-source busybox-static cpio gpiod xz-utils)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup.sh: not root and sudo is not available; cannot install packages" >&2
        exit 1
    fi
fi

missing=()
for p in "${PKGS[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        echo "setup.sh: apt package $p already installed"
    else
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: apt-get update"
    $SUDO apt-get update
    echo "setup.sh: apt-get install -y --no-install-recommends ${missing[*]}"
    # policy-rc.d keeps Debian's maintainer scripts from starting mosquitto.
    policy_created=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
    if [ -n "$policy_created" ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
else
    echo "setup.sh: all apt packages present, skipping apt-get"
fi

if command -v rustup >/dev/null 2>&1; then
    if rustup target list --installed | grep -qx wasm32-wasip1; then
        echo "setup.sh: rust target wasm32-wasip1 already installed"
    else
        echo "setup.sh: rustup target add wasm32-wasip1"
        rustup target add wasm32-wasip1
    fi
else
    echo "setup.sh: rustup not found; install Rust (rustup) and run: rustup target add wasm32-wasip1" >&2
    exit 1
fi

# Operations (issue 19): the reference Prometheus text parser (tests/integration/ops.rs reads
# a scrape with it), and the JSON Schema validator with PyYAML (every shipped example is
# validated against `shoal schema`).
PY_PKGS=(prometheus-client jsonschema pyyaml)
if python3 -c "import prometheus_client, jsonschema, yaml" 2>/dev/null; then
    echo "setup.sh: python packages ${PY_PKGS[*]} already installed"
else
    echo "setup.sh: pip install ${PY_PKGS[*]}"
    python3 -m pip install --quiet "${PY_PKGS[@]}" || python3 -m pip install --quiet --break-system-packages "${PY_PKGS[@]}"
fi
# The board check (scripts/aarch64-board.sh, run by .ci/run): a cross linker and libc for
# aarch64, qemu-user to run the result, and Rust's aarch64 target.
BOARD_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
board_missing=()
for p in "${BOARD_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || board_missing+=("$p")
done
if [ "${#board_missing[@]}" -gt 0 ]; then
    echo "setup.sh: apt-get install -y --no-install-recommends ${board_missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${board_missing[@]}"
else
    echo "setup.sh: board-check packages present"
fi
if rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup.sh: rust target aarch64-unknown-linux-gnu already installed"
else
    echo "setup.sh: rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi

echo "setup.sh: done"
