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
        broker: broker.clone(),
        log,
        limits: HostLimits::from_spec(&spec.limits),
        counters: status.counters.clone(),
        paused: Some(status.probe.pause_receiver()),
    }
}
