# shellcheck shell=bash
# The stack the lean-build checks run (sourced by scripts/lean-run.sh and
# scripts/aarch64-board.sh, which differ only in the shoal they run it with): three guests
# precompiled by a full shoal, a publisher sending COUNT numbered messages to a subscriber
# that reports gaps and repeats, and hello. Run from the repository root.

# seq_stack_precompile SHOAL DIR NAME COUNT [more `images compile` options, e.g. --target T]
# Precompiles the three images into DIR with SHOAL and writes DIR/shoal.yaml (project NAME,
# COUNT messages).
seq_stack_precompile() {
    local shoal=$1 dir=$2 name=$3 count=$4
    shift 4
    "$shoal" images compile "$@" -o "$dir" \
        compose-examples/images/seq-subscriber.wasm \
        compose-examples/images/seq-publisher.wasm \
        compose-examples/images/hello.wasm
    cat >"$dir/shoal.yaml" <<YAML
name: $name
containers:
  sub:
    image: seq-subscriber.cwasm
    capabilities: [messaging]
  pub:
    image: seq-publisher.cwasm
    capabilities: [messaging, timers]
    env: {COUNT: "$count", PERIOD_MS: "2"}
    depends_on: {sub: {condition: service_started}}
  hi:
    image: hello.cwasm
YAML
}

# seq_stack_verify LOG COUNT: succeeds when the stack's output in the file LOG shows all
# COUNT messages arrived, none lost or repeated, and hello ran; otherwise prints what went
# wrong and fails.
seq_stack_verify() {
    local log=$1 count=$2
    if ! grep -q "sub | got $((count - 1))" "$log"; then
        echo "the subscriber did not get all $count messages"
        return 1
    fi
    if grep -qE "GAP|DUP" "$log"; then
        echo "messages were lost or repeated"
        return 1
    fi
    if ! grep -q "Hello from a shoal container!" "$log"; then
        echo "hello did not print its banner"
        return 1
    fi
}
