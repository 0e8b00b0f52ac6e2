//! GPIO with the `sim` backend, end to end: the SDK-style C guest `gpio_relay` checks its
//! own relay line, is refused a pin it was not granted, and switches the relay on button
//! edges raised from another shell with `shoal gpio set`.

use std::time::Duration;

use crate::support::{arg, image, stdout, Sandbox};

const LIMIT: Duration = Duration::from_secs(60);

fn stack(sandbox: &Sandbox, project: &str, args: &str) -> std::path::PathBuf {
    sandbox.write(
        "shoal.yaml",
        &format!(
            "name: {project}\ngpio:\n  button:\n    kind: sim\n    direction: input\n  relay:\n    kind: sim\n    direction: output\n  spare:\n    kind: sim\n    direction: output\ncontainers:\n  ctl:\n    image: {}\n    args: [{args}]\n    capabilities: [gpio]\n    gpio: [button, relay]\n",
            image("gpio_relay.wasm").display()
        ),
    )
}

#[test]
fn the_guest_drives_its_relay_and_follows_the_button_set_from_outside() {
    let sandbox = Sandbox::new();
    let file = stack(&sandbox, "relay", "\"2\"");
    let mut up = sandbox.up(&file);
    up.wait_seen("relay: set 0, read back 1, toggle 0, now 0", LIMIT);
    up.wait_seen("pin 7 (not granted): -22", LIMIT);
    up.wait_seen(
        "ocre_gpio_pin_set denied: port 0, pin 7 is not one of this container's GPIO lines",
        LIMIT,
    );
    up.wait_seen("waiting for button edges", LIMIT);

    assert_eq!(sandbox.ok(&["gpio", "get", "-p", "relay", "relay"]).trim(), "0");
    sandbox.ok(&["gpio", "set", "-p", "relay", "button", "1"]);
    up.wait_seen("button -> 1, relay -> 1 (rc 0)", LIMIT);
    assert_eq!(sandbox.ok(&["gpio", "get", "-p", "relay", "relay"]).trim(), "1");
    let row = sandbox.row("relay", "ctl");
    let lines: Vec<(String, u64)> = row["gpio"]
        .as_array()
        .expect("ps shows the container's lines")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or("").to_string(),
                l["value"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    assert_eq!(lines, vec![("button".into(), 1), ("relay".into(), 1)]);
    assert_eq!(row["denied"], 1);

    let refused = sandbox.fails(&["gpio", "set", "-p", "relay", "relay", "0"], 1);
    assert!(refused.contains("is an output: its container drives it"), "{refused}");
    let table = sandbox.ok(&["gpio", "get", "-p", "relay"]);
    assert!(table.contains("spare") && table.contains("sim"), "{table}");

    sandbox.ok(&["gpio", "set", "-p", "relay", "button", "0"]);
    up.wait_seen("button -> 0, relay -> 0 (rc 0)", LIMIT);
    up.wait_seen("done", LIMIT);
    let status = up.wait_exit(LIMIT);
    assert!(status.success(), "{status}: {}", up.seen.join("\n"));
}

#[test]
fn a_missing_chip_passes_config_and_stops_up_at_its_line() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "name: nochip\ngpio:\n  led:\n    chip: /dev/gpiochip-does-not-exist\n    line: 3\n    direction: output\ncontainers:\n  ctl:\n    image: {}\n    capabilities: [gpio]\n    gpio: [led]\n",
            image("gpio_relay.wasm").display()
        ),
    );
    let checked = sandbox.check(&file, &[]);
    assert!(checked.status.success(), "{}", stdout(&checked));
    let e = sandbox.fails(&["up", "-f", arg(&file)], 1);
    assert!(e.contains("GPIO line `led` (declared at"), "{e}");
    assert!(e.contains("shoal.yaml:3:3"), "{e}");
    assert!(e.contains("/dev/gpiochip-does-not-exist"), "{e}");
}

#[test]
fn config_refuses_a_gpio_list_without_the_capability() {
    let sandbox = Sandbox::new();
    let file = sandbox.write(
        "shoal.yaml",
        &format!(
            "gpio:\n  b:\n    kind: sim\n    direction: input\ncontainers:\n  ctl:\n    image: {}\n    capabilities: [timers]\n    gpio: [b]\n",
            image("gpio_relay.wasm").display()
        ),
    );
    let e = sandbox.fails(&["config", "-q", "-f", arg(&file)], 1);
    assert!(e.contains("shoal.yaml:9:5"), "{e}");
    assert!(e.contains("lacks the `gpio` capability"), "{e}");
}
