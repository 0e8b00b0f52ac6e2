//! MQTT bridges: the stack's topics to and from external MQTT brokers (`bridges:`).
//!
//! Each bridge is one MQTT 5 connection ([`rumqttc::v5`]) served by two tasks on the
//! stack's executor: one polls the client's event loop (connect, reconnect with capped
//! exponential backoff, read and write packets), the other moves messages between that
//! connection and the local [`Broker`].
//!
//! * **Export.** A local-only mailbox subscribed to the export prefixes is the bridge's
//!   bounded queue (see [`outbox`]): messages wait there while the link is down, the oldest
//!   is dropped and counted when it is full. Each message is published with its payload
//!   bytes unchanged and its content type in the MQTT 5 content-type property.
//! * **Import.** Messages matching an import filter are published into the local broker with
//!   [`Origin::Bridge`], so they reach local subscribers exactly like local messages (same
//!   prefix matching, same mailboxes, same subscribe grants) but never reach an export
//!   queue: nothing imported is sent back out. The subscriptions also set MQTT 5's
//!   *no local* option, so the broker never returns this bridge's own exports to it.
//! * **Sessions.** The client keeps its session (`clean start` off, `session_expiry` from
//!   the file), so the broker holds QoS 1 messages for an importing board while its link is
//!   down. Surviving a restart of the broker itself needs the broker to persist sessions
//!   (Mosquitto: `persistence true`); without that, exports still arrive (the bridge resends
//!   its unacknowledged window) but imports published during the outage are lost.

pub mod mosquitto;
pub mod outbox;
pub mod topic;

// compose: when to reconnect, and client id takeovers.
pub(crate) mod backoff;
mod link;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::MqttOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::logs::{LogSink, Stream};
use crate::spec::{BridgeSpec, ExportRule, ImportRule, SecretRef};

/// Largest MQTT packet accepted from the broker: the broker's payload limit plus room for the
/// topic and properties. The broker does not send larger messages to this client at all.
pub const MAX_INCOMING_PACKET: u32 = crate::broker::MAX_PAYLOAD as u32 + 16 * 1024;

/// The most QoS 1 publishes a bridge has in flight at once: the outbox's window (which
/// `outbox.rs` keeps at most at 64, so the conversion is exact).
pub const OUTGOING_INFLIGHT: u16 = outbox::WINDOW as u16;

/// Why a bridge could not be set up (it is then reported and left out; the stack runs).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate in {0}")]
    NoCertificate(std::path::PathBuf),
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// A snapshot of one bridge's counters, for `stats`, `ps` and `graph`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BridgeStats {
    pub name: String,
    pub url: String,
    /// The MQTT session is up right now.
    pub connected: bool,
    /// Local messages the broker has taken (QoS 1: acknowledged; QoS 0: written).
    pub exported: u64,
    /// Broker messages published into the local broker.
    pub imported: u64,
    /// Exports waiting or unacknowledged.
    pub queued: u64,
    /// Exports discarded: queue overflow (oldest first) or a topic the broker cannot take.
    pub dropped: u64,
    /// Broker messages not delivered locally (no matching rule, or over the payload limit).
    pub rejected: u64,
    /// Successful connects after the first one.
    pub reconnects: u64,
}

/// One running bridge.
pub struct BridgeHandle {
    spec: BridgeSpec,
    shared: Arc<link::Shared>,
    drain: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl BridgeHandle {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn stats(&self) -> BridgeStats {
        snapshot(&self.spec, &self.shared)
    }

    pub fn export_rules(&self) -> &[ExportRule] {
        &self.spec.export
    }

    pub fn import_rules(&self) -> &[ImportRule] {
        &self.spec.import
    }

    /// One line per rule, e.g. `export sensors/ -> line-3/sensors/ (qos 1)`.
    pub fn describe(&self) -> Vec<String> {
        describe_rules(&self.spec)
    }
}

fn snapshot(spec: &BridgeSpec, s: &link::Shared) -> BridgeStats {
    BridgeStats {
        name: spec.name.clone(),
        url: spec.url.clone(),
        connected: s.connected.load(Ordering::Relaxed),
        exported: s.exported.load(Ordering::Relaxed),
        imported: s.imported.load(Ordering::Relaxed),
        queued: s.queued.load(Ordering::Relaxed),
        dropped: s.dropped.load(Ordering::Relaxed),
        rejected: s.rejected.load(Ordering::Relaxed),
        reconnects: s.reconnects.load(Ordering::Relaxed),
    }
}

/// A read-only view of a [`BridgeSet`]'s counters that other tasks can keep (cheap to
/// clone), e.g. a control socket answering `stats` while the stack runs.
#[derive(Clone, Default)]
pub struct BridgeMonitor {
    bridges: Arc<Vec<(BridgeSpec, Arc<link::Shared>)>>,
}

impl BridgeMonitor {
    pub fn stats(&self) -> Vec<BridgeStats> {
        self.bridges
            .iter()
            .map(|(spec, shared)| snapshot(spec, shared))
            .collect()
    }
}

/// The rules of a bridge as text, one line each.
pub fn describe_rules(spec: &BridgeSpec) -> Vec<String> {
    let exports = spec
        .export
        .iter()
        .map(|r| format!("export {} -> {} (qos {})", r.local, r.remote, r.qos));
    let imports = spec
        .import
        .iter()
        .map(|r| format!("import {} -> {} (qos {})", r.remote, r.local, r.qos));
    exports.chain(imports).collect()
}

/// The bridges of one stack.
#[derive(Default)]
pub struct BridgeSet {
    bridges: Vec<BridgeHandle>,
}

impl BridgeSet {
    pub fn bridges(&self) -> &[BridgeHandle] {
        &self.bridges
    }

    pub fn stats(&self) -> Vec<BridgeStats> {
        self.bridges.iter().map(BridgeHandle::stats).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.bridges.is_empty()
    }

    /// A view of the counters that outlives borrows of the set (see [`BridgeMonitor`]).
    pub fn monitor(&self) -> BridgeMonitor {
        BridgeMonitor {
            bridges: Arc::new(
                self.bridges
                    .iter()
                    .map(|b| (b.spec.clone(), b.shared.clone()))
                    .collect(),
            ),
        }
    }

    /// Stop every bridge: each sends what is queued for at most its `flush_timeout`, then
    /// disconnects cleanly (its session stays on the broker for `session_expiry`).
    pub async fn shutdown(mut self) {
        for bridge in &self.bridges {
            bridge.drain.cancel();
        }
        for bridge in &mut self.bridges {
            let Some(mut task) = bridge.task.take() else { continue };
            // The task bounds itself by flush_timeout; this is the guard if the network
            // stalls a write beyond that.
            let limit = bridge.spec.flush_timeout + Duration::from_secs(2);
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for BridgeSet {
    fn drop(&mut self) {
        for bridge in &mut self.bridges {
            if let Some(task) = bridge.task.take() {
                task.abort();
            }
        }
    }
}

/// Start every bridge of a stack on the current tokio runtime. A bridge whose credentials
/// or TLS files cannot be read is reported on `log` (as `bridge:NAME`) and left out.
pub fn start(bridges: &[BridgeSpec], broker: &Broker, log: Arc<dyn LogSink>) -> BridgeSet {
    let mut set = BridgeSet::default();
    for spec in bridges {
        let label = log_name(spec);
        let options = match mqtt_options(spec) {
            Ok(options) => options,
            Err(e) => {
                log.line(&label, Stream::Warning, &format!("not started: {e}"));
                continue;
            }
        };
        let shared = Arc::new(link::Shared::default());
        let drain = CancellationToken::new();
        // Subscribed here, before any container can publish (see `link::run`).
        let outbox = outbox::Outbox::new(broker, spec.export.clone(), spec.queue);
        let task = tokio::spawn(link::run(
            spec.clone(),
            options,
            broker.clone(),
            outbox,
            log.clone(),
            shared.clone(),
            drain.clone(),
        ));
        set.bridges.push(BridgeHandle {
            spec: spec.clone(),
            shared,
            drain,
            task: Some(task),
        });
    }
    set
}

/// The name a bridge's log lines carry.
pub fn log_name(spec: &BridgeSpec) -> String {
    format!("bridge:{}", spec.name)
}

/// Client options from the file: session, keep-alive, credentials (read now), TLS.
pub fn mqtt_options(spec: &BridgeSpec) -> Result<MqttOptions, BridgeError> {
    let mut options = base_options(
        &spec.client_id,
        &spec.host,
        spec.port,
        spec.keep_alive,
        OUTGOING_INFLIGHT,
    );
    let expiry = u32::try_from(spec.session_expiry.as_secs()).unwrap_or(u32::MAX);
    options.set_clean_start(expiry == 0);
    if expiry > 0 {
        options.set_session_expiry_interval(Some(expiry));
    }
    if let Some(user) = &spec.username {
        let password = match &spec.password {
            Some(secret) => read_secret(secret)?,
            None => String::new(),
        };
        options.set_credentials(read_secret(user)?, password);
    }
    if spec.use_tls {
        options.set_transport(tls_transport(&spec.tls)?);
    }
    Ok(options)
}

/// What every MQTT connection of shoal sets (bridges and the fleet's, see
/// `fleet::connect`): keep-alive, packet size limit, in-flight window, connect timeout,
/// no Nagle. Sessions and credentials are the caller's.
pub fn base_options(client_id: &str, host: &str, port: u16, keep_alive: Duration, inflight: u16) -> MqttOptions {
    let mut options = MqttOptions::new(client_id.to_owned(), host.to_owned(), port);
    options.set_keep_alive(keep_alive);
    options.set_max_packet_size(Some(MAX_INCOMING_PACKET));
    // rumqttc sizes its table of in-flight publishes by this limit up front, one slot per
    // packet id: left at its default (65,535) that table alone held ~14 MB per bridge.
    // The outbox never hands the client more than its window, so that is the limit.
    options.set_outgoing_inflight_upper_limit(inflight);
    options.set_connection_timeout(10);
    // Small packets (a publish, an acknowledgement) go out at once instead of waiting for
    // the peer's TCP acknowledgement of the previous one (Nagle): measured by
    // `shoal bench bridge`, that wait put the QoS 1 p99 at ~4 ms.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    options
}

/// The TLS transport for `mqtts://` with these files (system roots when no CA file).
pub fn tls_transport(tls: &crate::spec::BridgeTls) -> Result<rumqttc::Transport, BridgeError> {
    Ok(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
        Arc::new(tls_config(tls)?),
    )))
}

/// A credential from the file: as written, from an environment variable, or from a file
/// (without the editor's final newline).
pub fn read_secret(secret: &SecretRef) -> Result<String, BridgeError> {
    match secret {
        SecretRef::Plain(text) => Ok(text.clone()),
        SecretRef::Env(name) => std::env::var(name).map_err(|_| BridgeError::MissingEnv(name.clone())),
        SecretRef::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| BridgeError::Read {
                path: path.clone(),
                source,
            })?;
            // Editors end files with a newline; it is never part of a password.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
        }
    }
}

fn tls_config(tls: &crate::spec::BridgeTls) -> Result<rustls::ClientConfig, BridgeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read_certs = |path: &std::path::PathBuf| -> Result<Vec<CertificateDer<'static>>, BridgeError> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| BridgeError::Tls(format!("{}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BridgeError::Tls(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(BridgeError::NoCertificate(path.clone()));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| BridgeError::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(BridgeError::Tls(
                    "no system CA certificates found; set `tls.ca_file`".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BridgeError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| BridgeError::Tls(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| BridgeError::Tls(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::BridgeTls;

    pub(crate) fn spec(url_port: u16) -> BridgeSpec {
        BridgeSpec {
            name: "t".into(),
            url: format!("mqtt://127.0.0.1:{url_port}"),
            host: "127.0.0.1".into(),
            port: url_port,
            use_tls: false,
            client_id: "shoal-test-t".into(),
            username: None,
            password: None,
            tls: BridgeTls::default(),
            keep_alive: Duration::from_secs(30),
            session_expiry: Duration::from_secs(60),
            queue: 100,
            flush_timeout: Duration::from_secs(2),
            reconnect_max: Duration::from_secs(1),
            export: vec![ExportRule {
                local: "s/".into(),
                remote: "r/".into(),
                qos: 1,
            }],
            import: vec![ImportRule {
                remote: "in/#".into(),
                local: "local/".into(),
                qos: 1,
            }],
            location: crate::spec::Location {
                file: "x".into(),
                line: 1,
                column: 1,
            },
        }
    }

    #[test]
    fn secrets_are_read_when_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(read_secret(&SecretRef::File(file.clone())).unwrap(), "s3cret");
        assert!(matches!(
            read_secret(&SecretRef::Env("SHOAL_TEST_SURELY_UNSET_VARIABLE".into())),
            Err(BridgeError::MissingEnv(_))
        ));
        let mut s = spec(1883);
        s.username = Some(SecretRef::Plain("me".into()));
        s.password = Some(SecretRef::File(file));
        let options = mqtt_options(&s).unwrap();
        let login = options.credentials().unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), ("me", "s3cret"));
        assert!(!options.clean_start());
        assert_eq!(options.session_expiry_interval(), Some(60));
    }

    /// rumqttc allocates one slot per allowed in-flight packet id when the client is made;
    /// unbounded (65,535 slots) that was ~14 MB per bridge, measured by `shoal bench bridge`.
    #[test]
    fn the_client_allows_no_more_in_flight_than_the_outbox_window() {
        let options = mqtt_options(&spec(1883)).unwrap();
        assert_eq!(options.get_outgoing_inflight_upper_limit(), Some(outbox::WINDOW as u16));
        assert_eq!(usize::from(OUTGOING_INFLIGHT), outbox::WINDOW);
    }

    #[test]
    fn a_tls_bridge_needs_a_readable_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let mut s = spec(8883);
        s.use_tls = true;
        s.tls.ca_file = Some(ca);
        assert!(matches!(mqtt_options(&s), Err(BridgeError::NoCertificate(_))));
    }

    #[test]
    fn rules_are_described() {
        assert_eq!(
            describe_rules(&spec(1)),
            ["export s/ -> r/ (qos 1)", "import in/# -> local/ (qos 1)"]
        );
    }
}
