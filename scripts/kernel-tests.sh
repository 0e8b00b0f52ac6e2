#!/usr/bin/env bash
# Real-kernel tests: boot Debian's own kernel under qemu-system-x86_64 with a small initramfs
# holding shoal, guest images and the gpio-sim driver, create simulated GPIO lines through
# configfs, and run tests/kernel/vm-tests.sh against the kernel's GPIO character device.
#
#   bash scripts/kernel-tests.sh [SHOAL_BINARY]     (default: $CARGO_TARGET_DIR or target, /debug/shoal)
#
# Why qemu: this machine (and CI) cannot load kernel modules, and shoal's cdev GPIO backend
# must be tested against the kernel's real uAPI, not a mock.
#
# Why the driver is compiled here: Debian 12's kernel is built without CONFIG_GPIO_SIM (and
# without IRQ_SIM, which gpio-sim needs). When the installed kernel ships gpio-sim.ko it is
# used as is; otherwise this script compiles the kernel's own drivers/gpio/gpio-sim.c and
# kernel/irq/irq_sim.c, taken from Debian's linux-source package of the same kernel, into one
# out-of-tree gpio-sim.ko against Debian's linux-headers (kbuild). One line of irq_sim.c is
# changed: it calls irq_to_desc(), which the kernel does not export to modules, and the
# exported generic_handle_irq() does the same dispatch. The module is cached per kernel.
#
# Environment: KERNEL_TESTS_KVER (kernel version, default: the newest with /boot/vmlinuz-*),
# KERNEL_TESTS_ACCEL (tcg, the default, or kvm),
# KERNEL_TESTS_TIMEOUT (seconds for the whole VM run, default 240), KERNEL_TESTS_VERBOSE=1
# (print the VM's console even when every test passes).
# Prints `kernel-tests: N passed, M failed, K skipped` last; exits 1 on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHOAL="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/shoal}"
TIMEOUT="${KERNEL_TESTS_TIMEOUT:-240}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/shoal-kernel-tests"

die() {
    echo "kernel-tests: error: $*" >&2
    echo "kernel-tests: 0 passed, 1 failed, 0 skipped"
    exit 1
}

for tool in qemu-system-x86_64 cpio strip ldd make modinfo timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/setup.sh as root)"
done
BUSYBOX=/bin/busybox
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
if ! { [ -x "$BUSYBOX" ] && file_is_static "$BUSYBOX"; }; then
    die "no static $BUSYBOX (apt package busybox-static; run scripts/setup.sh)"
fi
[ -x "$SHOAL" ] || die "shoal binary $SHOAL not found (cargo build, or pass its path)"

if [ -n "${KERNEL_TESTS_KVER:-}" ]; then
    KVER="$KERNEL_TESTS_KVER"
else
    KVER="$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' 2>/dev/null \
        | sed 's/^vmlinuz-//' | sort -V | tail -n 1)"
fi
[ -n "$KVER" ] || die "no kernel in /boot (apt package linux-image-amd64; run scripts/setup.sh)"
KERNEL="/boot/vmlinuz-$KVER"
MODDIR="/lib/modules/$KVER"
[ -r "$KERNEL" ] || die "$KERNEL is missing or unreadable"
[ -f "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing (linux-image-$KVER broken?)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/shoal-kernel-tests.XXXXXX")"
QEMU_PID=""
cleanup() {
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- gpio-sim.ko: the kernel's own, or compiled from the same kernel's source -------------
# Sets GPIO_SIM_KO to the path of a gpio-sim.ko for $KVER (no subshell, so `die` ends the script).
gpio_sim_module() {
    local shipped
    shipped="$(modinfo -k "$KVER" -n gpio-sim 2>/dev/null || true)"
    if [ -n "$shipped" ] && [ -f "$shipped" ]; then
        GPIO_SIM_KO="$shipped"
        return
    fi
    local headers="$MODDIR/build"
    local src
    src="$(find /usr/src -maxdepth 1 -name "linux-source-$(echo "$KVER" | cut -d. -f1,2).tar.*" | head -n 1)"
    [ -d "$headers" ] || die "$KVER has no gpio-sim.ko and $headers is missing (apt package linux-headers-$KVER)"
    [ -n "$src" ] || die "$KVER has no gpio-sim.ko and no /usr/src/linux-source-*.tar.* (apt package linux-source-$(echo "$KVER" | cut -d. -f1,2))"
    local key
    key="$KVER-$(stat -c '%s-%Y' "$src")"
    local cached="$CACHE/$key/gpio-sim.ko"
    if [ -f "$cached" ]; then
        GPIO_SIM_KO="$cached"
        return
    fi
    echo "kernel-tests: building gpio-sim.ko for $KVER from $src"
    local kb="$WORK/kbuild"
    mkdir -p "$kb/src"
    local top
    top="$(basename "$src")"
    top="${top%%.tar.*}"    # Debian's tarball holds one folder named like the file
    tar -xf "$src" -C "$kb/src" "$top/drivers/gpio/gpio-sim.c" "$top/drivers/gpio/gpiolib.h" \
        "$top/kernel/irq/irq_sim.c" || die "could not extract gpio-sim sources from $src"
    cp "$kb/src/$top/drivers/gpio/gpio-sim.c" "$kb/gpio_sim_main.c"
    cp "$kb/src/$top/drivers/gpio/gpiolib.h" "$kb/gpiolib.h"
    sed 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' \
        "$kb/src/$top/kernel/irq/irq_sim.c" > "$kb/irq_sim.c"
    grep -q 'irq_to_desc' "$kb/irq_sim.c" && die "irq_sim.c of $src still calls irq_to_desc; update the patch line"
    printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio_sim_main.o irq_sim.o\n' > "$kb/Kbuild"
    timeout 600 make -s -C "$headers" M="$kb" modules >"$kb/build.log" 2>&1 \
        || { cat "$kb/build.log" >&2; die "building gpio-sim.ko failed"; }
    mkdir -p "$CACHE/$key"
    cp "$kb/gpio-sim.ko" "$cached"
    GPIO_SIM_KO="$cached"
}

# Copies a kernel module into the initramfs, decompressed (busybox insmod reads plain .ko).
pack_module() {
    local from="$1" name
    name="$(basename "$from")"
    case "$name" in
        *.ko.xz) xz -dc "$from" > "$INITRD/lib/modules/${name%.xz}"; name="${name%.xz}" ;;
        *.ko.zst) zstd -qdc "$from" > "$INITRD/lib/modules/${name%.zst}"; name="${name%.zst}" ;;
        *.ko.gz) gzip -dc "$from" > "$INITRD/lib/modules/${name%.gz}"; name="${name%.gz}" ;;
        *) cp "$from" "$INITRD/lib/modules/$name" ;;
    esac
    echo "$name" >> "$INITRD/lib/modules/load-order"
}

# Appends, dependencies first, the kernel modules a module needs (from modules.dep).
declare -A PACKED=()
pack_with_deps() {
    local mod="$1" path="$2" dep rel
    [ -n "${PACKED[$mod]:-}" ] && return
    for dep in $(modinfo -F depends "$path" | tr ',' ' '); do
        rel="$(grep -E "(^|/)${dep}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -n 1 | cut -d: -f1 || true)"
        [ -n "$rel" ] || die "module $dep (needed by $mod) is not in $MODDIR/modules.dep"
        pack_with_deps "$dep" "$MODDIR/$rel"
    done
    pack_module "$path"
    PACKED[$mod]=1
}

# Copies a dynamically linked program with the shared libraries and loader ldd lists.
pack_program() {
    local from="$1" to="$2" lib
    cp "$from" "$INITRD$to"
    for lib in $(ldd "$from" | grep -oE '/[^ ]+'); do
        [ -e "$INITRD$lib" ] && continue
        mkdir -p "$INITRD$(dirname "$lib")"
        cp -L "$lib" "$INITRD$lib"
    done
}

# --- the initramfs ------------------------------------------------------------------------
INITRD="$WORK/root"
mkdir -p "$INITRD"/{bin,sbin,dev,proc,sys,tmp,run,lib/modules,repo/compose-examples/images,repo/tests}
cp "$BUSYBOX" "$INITRD/bin/busybox"
cp "$ROOT/tests/kernel/init" "$INITRD/init"
chmod +x "$INITRD/init"
cp -r "$ROOT/tests/kernel" "$INITRD/repo/tests/kernel"
: > "$INITRD/lib/modules/load-order"
gpio_sim_module
pack_with_deps gpio-sim "$GPIO_SIM_KO"

# shoal without debug info (a debug build is ~400 MB, ~35 MB stripped), with its libraries.
strip --strip-debug -o "$WORK/shoal" "$SHOAL"
pack_program "$WORK/shoal" /bin/shoal
for img in hello.wasm gpio_relay.wasm; do
    if [ -f "$ROOT/compose-examples/images/$img" ]; then
        cp "$ROOT/compose-examples/images/$img" "$INITRD/repo/compose-examples/images/"
    fi
done
[ -f "$INITRD/repo/compose-examples/images/hello.wasm" ] \
    || die "compose-examples/images/hello.wasm missing (run scripts/build-guests.sh)"
# libgpiod's tools, when installed, check the chip through the character device too.
for tool in gpiodetect gpioinfo gpioget gpioset gpiomon; do
    if command -v "$tool" >/dev/null 2>&1; then
        pack_program "$(command -v "$tool")" "/bin/$tool"
    fi
done

(cd "$INITRD" && find . -print0 | cpio --null -o -H newc --quiet) > "$WORK/initrd.cpio"

# --- boot ---------------------------------------------------------------------------------
# TCG (software emulation) by default: it works everywhere. KVM is opt-in because a /dev/kvm
# that opens is no proof it runs guests (on the development VM, without nested virtualisation,
# a KVM guest printed nothing until the timeout).
ACCEL="${KERNEL_TESTS_ACCEL:-tcg}"
case "$ACCEL" in
    kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
    tcg) ACCEL_ARGS=(-accel tcg -cpu max) ;;
    *) die "KERNEL_TESTS_ACCEL must be kvm or tcg, not $ACCEL" ;;
esac
LOG="$WORK/console.log"
echo "kernel-tests: booting $KERNEL ($ACCEL) with $(du -h "$WORK/initrd.cpio" | cut -f1) initramfs, timeout ${TIMEOUT}s"
start=$(date +%s)
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 "${ACCEL_ARGS[@]}" -m 1024 -smp 2 \
    -kernel "$KERNEL" -initrd "$WORK/initrd.cpio" \
    -append "console=ttyS0 panic=-1 quiet" \
    -display none -monitor none -serial "file:$LOG" -nic none -no-reboot \
    </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!
wait "$QEMU_PID"
qemu_rc=$?
QEMU_PID=""
set -e
elapsed=$(( $(date +%s) - start ))
touch "$LOG"

tr -d '\r' < "$LOG" > "$WORK/console.txt"
grep '^KTEST \(PASS\|FAIL\|SKIP\)' "$WORK/console.txt" || true
passed=$(grep -c '^KTEST PASS ' "$WORK/console.txt" || true)
failed=$(grep -c '^KTEST FAIL ' "$WORK/console.txt" || true)
skipped=$(grep -c '^KTEST SKIP ' "$WORK/console.txt" || true)
if ! grep -q '^KTEST DONE' "$WORK/console.txt"; then
    if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
        echo "kernel-tests: the VM did not finish within ${TIMEOUT}s"
    else
        echo "kernel-tests: the VM ended (qemu exit $qemu_rc) before the tests finished"
    fi
    failed=$((failed + 1))
elif [ "$passed" = 0 ]; then
    echo "kernel-tests: the VM finished without a passing test"
    failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ] || [ -n "${KERNEL_TESTS_VERBOSE:-}" ]; then
    echo "kernel-tests: --- VM console ---"
    cat "$WORK/console.txt"
    echo "kernel-tests: --- qemu ---"
    cat "$WORK/qemu.out"
fi
echo "kernel-tests: VM run took ${elapsed}s"
echo "kernel-tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
