//! Factory stack: reads the declared sensors `cpu_temp` and `RNG Sensor` every period
//! (default 1 s, or `--period 2s` / `--period 500ms`) and publishes each reading to
//! `sensors/raw/<sensor>` as `text/plain`.

use shoal_guest::{sensors, Event, EventKind, Timer};
use std::process::exit;

const SENSORS: [&str; 2] = ["cpu_temp", "RNG Sensor"];

fn parse_period(s: &str) -> Option<u32> {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse().ok()
    } else if let Some(sec) = s.strip_suffix('s') {
        sec.parse::<f64>().ok().map(|v| (v * 1000.0) as u32)
    } else {
        s.parse().ok()
    }
}

fn period_ms() -> u32 {
    let args: Vec<String> = std::env::args().collect();
    let mut period = 1000;
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--period" {
            match args.get(i + 1).and_then(|v| parse_period(v)) {
                Some(p) if p > 0 => period = p,
                _ => {
                    eprintln!("collector: --period needs a duration like 2s or 500ms");
                    exit(2);
                }
            }
            i += 1;
        }
        i += 1;
    }
    period
}

fn main() {
    let period = period_ms();
    if let Err(e) = sensors::init() {
        eprintln!("collector: sensor init failed: {e}");
        exit(1);
    }
    let mut open = Vec::new();
    for name in SENSORS {
        match sensors::open_by_name(name) {
            Ok(handle) => {
                println!("collector: opened sensor {name} (handle {handle})");
                open.push(name);
            }
            Err(e) => eprintln!("collector: cannot open sensor {name}: {e}"),
        }
    }
    if open.is_empty() {
        eprintln!("collector: no sensor could be opened");
        exit(1);
    }
    let timer = shoal_guest::register_dispatcher(EventKind::Timer)
        .and_then(|_| Timer::create(1))
        .and_then(|t| t.start(period, true).map(|_| t));
    if let Err(e) = timer {
        eprintln!("collector: timer setup failed: {e}");
        exit(1);
    }
    println!("collector: publishing to sensors/raw/ every {period} ms");
    shoal_guest::run(|event| {
        if let Event::Timer { id: 1 } = event {
            for name in &open {
                let value = sensors::read_by_name(name, 0);
                if sensors::failed(value) {
                    eprintln!("collector: read of {name} failed");
                    continue;
                }
                let topic = format!("sensors/raw/{name}");
                let payload = format!("{value:.2}");
                if let Err(e) = shoal_guest::publish(&topic, "text/plain", payload.as_bytes()) {
                    eprintln!("collector: {e}");
                }
            }
        }
    })
}
