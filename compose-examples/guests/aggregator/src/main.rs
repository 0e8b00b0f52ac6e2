//! Factory stack: subscribes `sensors/raw/`, keeps a moving average of the last 5 readings per
//! sensor, publishes it to `sensors/avg/<sensor>`, and publishes an alarm to `alarms/high`
//! for every reading whose average exceeds `THRESHOLD` (env, default 80).

use shoal_guest::{Event, EventKind};
use std::collections::{HashMap, VecDeque};
use std::process::exit;

const WINDOW: usize = 5;
const PREFIX: &str = "sensors/raw/";

fn main() {
    let threshold: f64 = match std::env::var("THRESHOLD") {
        Ok(v) => match v.trim().parse() {
            Ok(t) => t,
            Err(_) => {
                eprintln!("aggregator: THRESHOLD is not a number: {v}");
                exit(2);
            }
        },
        Err(_) => 80.0,
    };
    if let Err(e) = shoal_guest::register_dispatcher(EventKind::Message).and_then(|_| shoal_guest::subscribe(PREFIX)) {
        eprintln!("aggregator: cannot subscribe to {PREFIX}: {e}");
        exit(1);
    }
    println!("aggregator: averaging {PREFIX} over {WINDOW} readings, alarm above {threshold}");
    let mut windows: HashMap<String, VecDeque<f64>> = HashMap::new();
    shoal_guest::run(|event| {
        let Event::Message(m) = event else { return };
        let Some(sensor) = m.topic.strip_prefix(PREFIX) else {
            return;
        };
        let Ok(value) = m.payload_str().trim().parse::<f64>() else {
            eprintln!(
                "aggregator: ignoring non-numeric reading on {}: {}",
                m.topic,
                m.payload_str()
            );
            return;
        };
        let w = windows.entry(sensor.to_string()).or_default();
        if w.len() == WINDOW {
            w.pop_front();
        }
        w.push_back(value);
        let avg = w.iter().sum::<f64>() / w.len() as f64;
        let payload = format!("{avg:.2}");
        if let Err(e) = shoal_guest::publish(&format!("sensors/avg/{sensor}"), "text/plain", payload.as_bytes()) {
            eprintln!("aggregator: {e}");
        }
        if avg > threshold {
            let alarm = format!("{sensor} average {avg:.2} above {threshold}");
            println!("aggregator: ALARM {alarm}");
            if let Err(e) = shoal_guest::publish("alarms/high", "text/plain", alarm.as_bytes()) {
                eprintln!("aggregator: {e}");
            }
        }
    })
}
