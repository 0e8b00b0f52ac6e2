//! `shoal bench gpio`: how long a GPIO edge takes to reach a parked guest.
//!
//! One built-in guest (SDK-style poll loop, parked in `ocre_sleep`) has registered a
//! callback on a `sim` input line `button` and sets the `sim` output `relay` to the state of
//! each edge it gets. Each round changes `button` the way `shoal gpio set` does (in
//! process, without the socket) and waits until `relay` follows. The figure is therefore
//! the whole round trip: edge -> event queued -> parked guest woken -> `ocre_get_event`
//! -> the guest's `ocre_gpio_pin_set` seen by the host, an upper bound of "the guest holds
//! the edge event".

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bench_image;
use super::density::CountingSink;
use super::messaging::percentile;
use crate::gpio::GpioLines;
use crate::runtime::Runtime;
use crate::spec::Stack;
use crate::supervisor::Supervisor;

#[derive(Debug, Clone, serde::Serialize)]
pub struct GpioRow {
    pub samples: usize,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
}

/// The bench stack: the follower granted `button` (port 0 pin 0) and `relay` (pin 1).
pub fn stack(image: &std::path::Path) -> Result<Stack, super::BenchError> {
    super::stack_from(&serde_json::json!({
        "name": "bench",
        "gpio": {
            "button": {"kind": "sim", "direction": "input"},
            "relay": {"kind": "sim", "direction": "output"},
        },
        "containers": {
            "bench": {
                "image": image,
                "capabilities": ["gpio"],
                "gpio": ["button", "relay"],
                "stop_timeout": "5s",
            }
        }
    }))
}

/// `rounds` edges, one at a time, each after the guest has parked again.
pub async fn run(
    runtime: Arc<Runtime>,
    stack: &Stack,
    module: wasmtime::Module,
    rounds: usize,
) -> Result<GpioRow, crate::gpio::GpioError> {
    let lines = GpioLines::open(&stack.gpio)?;
    let mut runner = Supervisor::new(runtime, Arc::new(CountingSink::default()));
    runner.set_gpio(lines.clone());
    for spec in &stack.containers {
        runner.add(spec, Some(bench_image(&module)));
    }
    let button = lines.get("button")?.clone();
    let mut relay = lines.get("relay")?.subscribe();
    // The guest has registered its callback once an edge comes back: until then, nudge.
    let mut value = false;
    loop {
        value = !value;
        button.inject(value)?;
        let followed = tokio::time::timeout(Duration::from_millis(200), relay.wait_for(|v| *v == value)).await;
        if matches!(followed, Ok(Ok(_))) {
            break;
        }
    }
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // Let the guest finish its round and park in its event wait again.
        tokio::time::sleep(Duration::from_millis(2)).await;
        value = !value;
        let start = Instant::now();
        button.inject(value)?;
        let followed = tokio::time::timeout(Duration::from_secs(10), relay.wait_for(|v| *v == value)).await;
        if matches!(followed, Ok(Ok(_))) {
            latencies.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    latencies.sort_by(f64::total_cmp);
    runner.stop_all().await;
    let _ = runner.into_report(true);
    Ok(GpioRow {
        samples: latencies.len(),
        latency_p50_us: percentile(&latencies, 0.50),
        latency_p99_us: percentile(&latencies, 0.99),
        latency_max_us: latencies.last().copied().unwrap_or(f64::NAN),
    })
}

pub fn render(row: &GpioRow) -> String {
    format!(
        "GPIO edge -> parked guest -> its output follows ({} edges, sim lines)\n  p50 {:.1} us   p99 {:.1} us   max {:.1} us\n",
        row.samples, row.latency_p50_us, row.latency_p99_us, row.latency_max_us
    )
}
