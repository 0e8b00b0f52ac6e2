//! Subscribes `seq/` (or the prefix in env `PREFIX`) and checks the sequence numbers sent by `seq-publisher`: prints `got N`
//! for every message, `GAP expected X got Y` when numbers were skipped and `DUP N` when a
//! number comes again (or goes backwards). The first number must be `FIRST` (env, default
//! 0): a loss before the first message is a gap too. `FIRST=any` accepts any first number,
//! for a subscriber that joins a running stream on purpose.

use shoal_guest::{Event, EventKind};
use std::process::exit;

fn main() {
    let prefix = std::env::var("PREFIX").unwrap_or_else(|_| "seq/".to_string());
    if let Err(e) = shoal_guest::register_dispatcher(EventKind::Message).and_then(|_| shoal_guest::subscribe(&prefix)) {
        eprintln!("seq-subscriber: cannot subscribe to {prefix}: {e}");
        exit(1);
    }
    let mut expected: Option<u64> = match std::env::var("FIRST").as_deref() {
        Err(_) => Some(0),
        Ok("any") => None,
        Ok(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("seq-subscriber: FIRST is neither a number nor `any`: {v}");
                exit(2);
            }
        },
    };
    println!("seq-subscriber: listening on {prefix}");
    shoal_guest::run(|event| {
        let Event::Message(m) = event else { return };
        let Ok(n) = m.payload_str().trim().parse::<u64>() else {
            eprintln!("seq-subscriber: bad payload on {}: {}", m.topic, m.payload_str());
            return;
        };
        println!("got {n}");
        match expected {
            Some(x) if n > x => println!("GAP expected {x} got {n}"),
            Some(x) if n < x => println!("DUP {n}"),
            _ => {}
        }
        expected = Some(expected.map_or(n + 1, |x| x.max(n + 1)));
    })
}
