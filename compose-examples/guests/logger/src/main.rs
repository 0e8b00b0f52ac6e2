//! Factory stack: subscribes `alarms/` and prints every alarm. When `/logs` is mounted, also
//! appends each alarm to `/logs/alarms.log`.

use shoal_guest::{Event, EventKind};
use std::io::Write;
use std::process::exit;

fn main() {
    if let Err(e) = shoal_guest::register_dispatcher(EventKind::Message).and_then(|_| shoal_guest::subscribe("alarms/"))
    {
        eprintln!("logger: cannot subscribe to alarms/: {e}");
        exit(1);
    }
    println!("logger: listening on alarms/");
    shoal_guest::run(|event| {
        if let Event::Message(m) = event {
            let line = format!("ALARM {}: {}", m.topic, m.payload_str());
            println!("logger: {line}");
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open("/logs/alarms.log")
            {
                let _ = writeln!(f, "{line}");
            }
        }
    })
}
