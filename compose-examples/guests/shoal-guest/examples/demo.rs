//! The crate-level doc example, compiled by `cargo build --examples`.

use shoal_guest::{Event, Timer};

fn main() -> Result<(), shoal_guest::Error> {
    shoal_guest::register_dispatcher(shoal_guest::EventKind::Timer)?;
    shoal_guest::register_dispatcher(shoal_guest::EventKind::Message)?;
    shoal_guest::subscribe("demo/")?;
    let timer = Timer::create(1)?;
    timer.start(1000, true)?;
    let mut n = 0u32;
    shoal_guest::run(|event| match event {
        Event::Timer { id: 1 } => {
            let payload = n.to_string();
            if let Err(e) = shoal_guest::publish("demo/count", "text/plain", payload.as_bytes()) {
                eprintln!("{e}");
            }
            n += 1;
        }
        Event::Message(m) => println!("{} = {}", m.topic, m.payload_str()),
        _ => {}
    })
}
