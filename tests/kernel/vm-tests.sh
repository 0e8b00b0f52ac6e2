# The tests that run inside the real-kernel VM, sourced by tests/kernel/init (busybox sh).
# Each test prints exactly one of:
#   KTEST PASS <name>
#   KTEST FAIL <name>: <why>
#   KTEST SKIP <name>: <why>
# and scripts/kernel-tests.sh counts them. Every command that could block runs under
# `timeout`, so a broken shoal or driver ends as a FAIL line, never as a hung VM.
# shellcheck disable=SC2016 # wait_for's conditions are single-quoted on purpose: re-evaluated per poll

pass() { echo "KTEST PASS $1"; }
fail() { echo "KTEST FAIL $1: $2"; }
skip() { echo "KTEST SKIP $1: $2"; }
info() { echo "KTEST INFO $*"; }

SIM=/sys/kernel/config/gpio-sim/ktest
CHIP_LABEL=shoal-ktest
export SHOAL_DATA_DIR=/tmp/shoal-data SHOAL_RUNTIME_DIR=/run/shoal
mkdir -p "$SHOAL_DATA_DIR" "$SHOAL_RUNTIME_DIR"

# Polls the shell condition $2 (a string, evaluated each time) every 0.1 s for at most $1
# seconds; returns its last status.
wait_for() {
    tries=$(($1 * 10))
    cond=$2
    while [ "$tries" -gt 0 ]; do
        if eval "$cond"; then return 0; fi
        sleep 0.1
        tries=$((tries - 1))
    done
    eval "$cond"
}

# Creates one gpio-sim chip (4 lines; line 0 named ktest-button, line 1 ktest-relay) through
# configfs and sets CHIP (gpiochipN) and SIMDIR (its simulator-side sysfs folder).
make_chip() {
    mkdir "$SIM" "$SIM/bank0" || return 1
    echo "$CHIP_LABEL" > "$SIM/bank0/label" || return 1
    echo 4 > "$SIM/bank0/num_lines" || return 1
    mkdir "$SIM/bank0/line0" "$SIM/bank0/line1" || return 1
    echo ktest-button > "$SIM/bank0/line0/name" || return 1
    echo ktest-relay > "$SIM/bank0/line1/name" || return 1
    echo 1 > "$SIM/live" || return 1
    DEV=$(cat "$SIM/dev_name") && CHIP=$(cat "$SIM/bank0/chip_name") || return 1
    SIMDIR=/sys/devices/platform/$DEV/$CHIP
    info "gpio-sim device $DEV chip $CHIP label $CHIP_LABEL"
    [ -c "/dev/$CHIP" ] && [ -d "$SIMDIR/sim_gpio0" ]
}

sim_pull() { echo "$2" > "$SIMDIR/sim_gpio$1/pull"; }
sim_value() { cat "$SIMDIR/sim_gpio$1/value"; }

t_chip() {
    if make_chip; then pass gpio-sim-chip; else fail gpio-sim-chip "configfs setup failed"; return 1; fi
}

# The simulator side alone: a pull sets an unrequested input line's value.
t_sim_pull() {
    sim_pull 2 pull-up
    v1=$(sim_value 2)
    sim_pull 2 pull-down
    v0=$(sim_value 2)
    if [ "$v1" = 1 ] && [ "$v0" = 0 ]; then pass sim-pull; else fail sim-pull "read $v1/$v0, want 1/0"; fi
}

# The character device (libgpiod's tools, uAPI through /dev/gpiochipN): values and an edge.
t_cdev() {
    if ! command -v gpioget >/dev/null; then skip cdev-tools "gpiod tools not packed"; return; fi
    timeout 10 gpiodetect | sed 's/^/KTEST INFO gpiodetect: /'
    sim_pull 2 pull-up
    v1=$(timeout 10 gpioget "$CHIP" 2)
    sim_pull 2 pull-down
    v0=$(timeout 10 gpioget "$CHIP" 2)
    if [ "$v1" = 1 ] && [ "$v0" = 0 ]; then pass cdev-get; else fail cdev-get "read $v1/$v0, want 1/0"; fi

    timeout 20 gpiomon --num-events=1 --rising-edge "$CHIP" 2 > /tmp/gpiomon.out 2>&1 &
    mon=$!
    if ! wait_for 10 'timeout 5 gpioinfo "$CHIP" | grep -q "line *2:.*gpiomon"'; then
        fail cdev-edge "gpiomon never requested line 2"
        wait "$mon"
        return
    fi
    sim_pull 2 pull-up
    wait "$mon"
    if grep -q RISING /tmp/gpiomon.out; then
        pass cdev-edge
    else
        fail cdev-edge "no rising edge seen: $(cat /tmp/gpiomon.out)"
    fi
}

t_shoal_binary() {
    if out=$(timeout 30 shoal --version 2>&1); then
        info "$out"
        pass shoal-version
    else
        fail shoal-version "$out"
    fi
    if out=$(timeout 120 shoal run /repo/compose-examples/images/hello.wasm 2>&1); then
        echo "$out" | sed 's/^/KTEST INFO run: /'
        if echo "$out" | grep -q "Hello from a shoal container"; then
            pass shoal-run-hello
        else
            fail shoal-run-hello "exit 0 but the banner is missing"
        fi
    else
        echo "$out" | sed 's/^/KTEST INFO run: /'
        fail shoal-run-hello "shoal run exited non-zero"
    fi
}

# shoal's cdev backend end to end: the gpio_relay guest (compose-examples/guests/c/gpio_relay.c)
# on the sim chip. The button is driven from the simulator side; the guest sets the relay to
# the button's state on each edge, and the relay is read back on the simulator side.
READY='waiting for button edges'
t_shoal_gpio() {
    name=shoal-gpio-relay
    if ! timeout 30 shoal gpio --help >/dev/null 2>&1; then
        skip $name "this shoal has no GPIO support (shoal gpio --help fails)"
        return
    fi
    if [ ! -f /repo/compose-examples/images/gpio_relay.wasm ]; then
        fail $name "gpio_relay.wasm not packed (run scripts/build-guests.sh on the host)"
        return
    fi
    cd /repo/tests/kernel || return
    sim_pull 0 pull-up      # released (active_low: logical 0)
    out=$(timeout 120 shoal up -d -f gpio-relay.yaml 2>&1)
    rc=$?
    echo "$out" | sed 's/^/KTEST INFO up: /'
    if [ "$rc" != 0 ]; then
        fail $name "shoal up -d exited $rc"
        return
    fi
    why=""
    if ! wait_for 60 'timeout 10 shoal logs -p ktest-gpio ctl 2>/dev/null | grep -q "$READY"'; then
        why="the guest never printed '$READY'"
    else
        before=$(sim_value 1)
        sim_pull 0 pull-down    # press: physical low, logical 1
        if ! wait_for 30 '[ "$(sim_value 1)" = 1 ]'; then
            why="relay line stayed $before after the button press"
        elif ! wait_for 10 'timeout 10 shoal logs -p ktest-gpio ctl | grep -q "button -> 1, relay -> 1"'; then
            why="relay switched but the guest logged no 'button -> 1' event"
        else
            sim_pull 0 pull-up  # release
            if ! wait_for 30 '[ "$(sim_value 1)" = 0 ]'; then
                why="relay line stayed 1 after the button release"
            fi
        fi
    fi
    timeout 10 shoal gpio get -p ktest-gpio relay 2>&1 | sed 's/^/KTEST INFO gpio get relay: /'
    timeout 10 shoal ps -p ktest-gpio 2>&1 | sed 's/^/KTEST INFO ps: /'
    timeout 10 shoal logs -p ktest-gpio 2>&1 | sed 's/^/KTEST INFO logs: /'
    timeout 60 shoal down -p ktest-gpio 2>&1 | sed 's/^/KTEST INFO down: /'
    if [ -n "$why" ]; then fail $name "$why"; else pass $name; fi
}

if t_chip; then
    t_sim_pull
    t_cdev
fi
t_shoal_binary
if [ -n "${CHIP:-}" ]; then
    t_shoal_gpio
else
    fail shoal-gpio-relay "no gpio-sim chip"
fi
