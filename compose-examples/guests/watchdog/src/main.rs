//! Factory stack: subscribes `sensors/` and checks every second that the collector is alive.
//! Prints `watchdog: collector silent for Ns` (and publishes `alarms/watchdog`) while no
//! message came for more than 3 s, and `watchdog: collector back` when messages resume.

use shoal_guest::{Event, EventKind, Timer};
use std::process::exit;
use std::time::Instant;

const SILENCE_S: u64 = 3;

fn main() {
    let setup = shoal_guest::register_dispatcher(EventKind::Message)
        .and_then(|_| shoal_guest::register_dispatcher(EventKind::Timer))
        .and_then(|_| shoal_guest::subscribe("sensors/"))
        .and_then(|_| Timer::create(1))
        .and_then(|t| t.start(1000, true));
    if let Err(e) = setup {
        eprintln!("watchdog: setup failed: {e}");
        exit(1);
    }
    println!("watchdog: watching sensors/ (silence limit {SILENCE_S} s)");
    let mut last = Instant::now();
    let mut silent = false;
    shoal_guest::run(|event| match event {
        Event::Message(_) => {
            last = Instant::now();
            if silent {
                silent = false;
                println!("watchdog: collector back");
            }
        }
        Event::Timer { id: 1 } => {
            let secs = last.elapsed().as_secs();
            if secs > SILENCE_S {
                println!("watchdog: collector silent for {secs}s");
                if !silent {
                    silent = true;
                    let alarm = format!("collector silent for {secs}s");
                    if let Err(e) = shoal_guest::publish("alarms/watchdog", "text/plain", alarm.as_bytes()) {
                        eprintln!("watchdog: {e}");
                    }
                }
            }
        }
        _ => {}
    })
}
