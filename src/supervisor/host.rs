//! What the supervisor hands a container's host side: its `env` API configuration, and a
//! log that turns the host's warnings into events.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::container::ContainerStatus;
use super::events::EventBus;
use crate::broker::Broker;
use crate::host::{HostConfig, HostLimits};
use crate::logs::{LogSink, Stream};
use crate::spec::{ContainerSpec, SensorSpec};

/// Passes every line on, and turns warnings (denied calls, drops) into events too.
pub(super) struct WarningEvents {
    pub inner: Arc<dyn LogSink>,
    pub events: EventBus,
}

impl LogSink for WarningEvents {
    fn line(&self, container: &str, stream: Stream, text: &str) {
        if stream == Stream::Warning {
            self.events.record(Some(container), "warning", text);
        }
        self.inner.line(container, stream, text);
    }
}

/// What the container's `env` API gets: its grants, its topic lists, the sensors it may
/// open, the stack's broker, and the counters and pause switch the supervisor watches.
pub(super) fn host_config(
    spec: &ContainerSpec,
    sensors: &BTreeMap<String, SensorSpec>,
    gpio: &crate::gpio::GpioLines,
    broker: &Broker,
    log: Arc<dyn LogSink>,
    status: &ContainerStatus,
) -> HostConfig {
    HostConfig {
        container: spec.name.to_string(),
        capabilities: spec.capabilities.clone(),
        capabilities_location: spec.capabilities_location.clone(),
        publish: spec.publish.clone(),
        subscribe: spec.subscribe.clone(),
        sensors: spec
            .sensors
            .iter()
            .filter_map(|name| sensors.get(name).cloned())
            .collect(),
        gpio: granted_lines(spec, gpio),
        broker: broker.clone(),
        log,
        limits: HostLimits::from_spec(&spec.limits),
        counters: status.counters.clone(),
        paused: Some(status.probe.clone()),
    }
}

/// The container's `gpio:` lines as requested for the stack, each with the SDK
/// `(port, pin)` the container knows it by. A line the stack did not request (its
/// `gpio:` section changed since `up`) is left out: calls naming it are refused.
fn granted_lines(spec: &ContainerSpec, lines: &crate::gpio::GpioLines) -> Vec<crate::host::gpio::GrantedLine> {
    spec.gpio
        .iter()
        .enumerate()
        .filter_map(|(index, name)| {
            let line = lines.get(name).ok()?.clone();
            let (port, pin) = crate::spec::decode::sdk_address(line.spec(), index);
            Some(crate::host::gpio::GrantedLine { port, pin, line })
        })
        .collect()
}
