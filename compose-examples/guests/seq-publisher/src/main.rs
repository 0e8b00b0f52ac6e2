//! Publishes `seq/<n>` with payload `<n>` (decimal, from 0) every `PERIOD_MS` ms (env,
//! default 10), `BURST` messages per tick (default 1). With `COUNT` set, stops after that
//! many messages and exits 0. `PREFIX` (default `seq/`) replaces the topic prefix.
//! For reload and message-loss tests.

use shoal_guest::{Event, EventKind, Timer};
use std::process::exit;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("seq-publisher: {name} is not a number: {v}");
            exit(2);
        }
    }
}

fn main() {
    let period = env_u64("PERIOD_MS").unwrap_or(10).max(1) as u32;
    let count = env_u64("COUNT");
    let burst = env_u64("BURST").unwrap_or(1).max(1);
    let prefix = std::env::var("PREFIX").unwrap_or_else(|_| "seq/".to_string());
    let setup = shoal_guest::register_dispatcher(EventKind::Timer)
        .and_then(|_| Timer::create(1))
        .and_then(|t| t.start(period, true));
    if let Err(e) = setup {
        eprintln!("seq-publisher: timer setup failed: {e}");
        exit(1);
    }
    println!("seq-publisher: publishing {prefix}<n> every {period} ms");
    let mut n: u64 = 0;
    shoal_guest::run(|event| {
        if let Event::Timer { id: 1 } = event {
            for _ in 0..burst {
                let payload = n.to_string();
                if let Err(e) = shoal_guest::publish(&format!("{prefix}{n}"), "text/plain", payload.as_bytes()) {
                    eprintln!("seq-publisher: {n}: {e}");
                }
                n += 1;
                if count == Some(n) {
                    println!("seq-publisher: done {n}");
                    exit(0);
                }
            }
        }
    })
}
