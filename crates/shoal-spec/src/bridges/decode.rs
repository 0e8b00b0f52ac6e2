//! One entry of `bridges:`, field by field: the broker URL, client id, credentials (as
//! references), TLS files, timings, the queue bound, then the rules ([`super::rules`]).
//! Every field is checked even after one fails, so a file shows all its mistakes at once;
//! `ok` records whether the bridge as a whole can be built.

use std::time::Duration;

use super::rules::{export_rule, import_rule, rules};
use super::url::{parse_url, BrokerUrl};
use super::{DEFAULT_FLUSH_TIMEOUT, DEFAULT_KEEP_ALIVE, DEFAULT_QUEUE, DEFAULT_RECONNECT_MAX, DEFAULT_SESSION_EXPIRY};
use super::{MAX_QUEUE, MIN_RECONNECT_MAX};
use crate::decode::Ctx;
use crate::model::{BridgeSpec, BridgeTls, SecretRef};
use crate::names::{check_name, sanitize_name, InvalidName};
use crate::node::{Key, Node, Value};
use schemars::JsonSchema;

use super::rules::{ExportFile, ImportFile};

/// A bridge's known, non-empty fields, with the key path messages use.
struct Fields<'n> {
    path: String,
    fields: Vec<&'n (Key, Node)>,
}

impl Fields<'_> {
    fn get(&self, field: &str) -> Option<(Key, Node)> {
        self.fields
            .iter()
            .find(|(k, v)| k.name == field && !matches!(v.value, Value::Null))
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }
}

pub(super) fn decode_bridge(key: &Key, node: &Node, ctx: &mut Ctx) -> Option<BridgeSpec> {
    let name = &key.name;
    let path = format!("bridges.{name}");
    match check_name(name) {
        Ok(()) => {}
        Err(InvalidName::Characters(_)) => ctx.error(
            key.pos,
            &path,
            format!("invalid bridge name `{name}`: use lowercase letters, digits, `-` and `_`"),
            Some(format!("for example `{}`", sanitize_name(name))),
        ),
        Err(e @ InvalidName::TooLong(_)) => ctx.error(key.pos, &path, format!("bridge {e}"), Some(e.hint())),
    }
    let entries = bridge_entries(node, &path, name, ctx)?;
    let fields = ctx.check_keys(&entries, BridgeFile::KEYS, None, &path, &format!("in bridge `{name}`"));
    let f = Fields { path, fields };
    let mut ok = true;

    let url = decode_url(key, &f, ctx, &mut ok);
    let client_id = decode_client_id(&f, ctx, &mut ok);
    let (username, password) = credentials(key, &f, ctx, &mut ok);
    let tls = decode_tls(name, &f, url.as_ref().map(|(_, parsed)| parsed), ctx, &mut ok);
    let timing = decode_timing(&f, ctx, &mut ok);
    let queue = decode_queue(&f, ctx, &mut ok);
    let export = match f.get("export") {
        Some((_, v)) => rules(ctx, &v, &f.key("export"), &mut ok, export_rule),
        None => Vec::new(),
    };
    let import = match f.get("import") {
        Some((_, v)) => rules(ctx, &v, &f.key("import"), &mut ok, import_rule),
        None => Vec::new(),
    };
    if ok && export.is_empty() && import.is_empty() {
        ctx.warn(
            key.pos,
            &f.path,
            format!("bridge `{name}` has no `export` or `import` rules; it only connects"),
            Some("add `export: [{local: \"sensors/\"}]` or `import: [{remote: \"commands/#\"}]`".into()),
        );
    }

    let (url, parsed) = url?;
    ok.then(|| BridgeSpec {
        name: name.clone(),
        url,
        host: parsed.host,
        port: parsed.port,
        use_tls: parsed.use_tls,
        client_id,
        username,
        password,
        tls,
        keep_alive: timing.keep_alive,
        session_expiry: timing.session_expiry,
        queue,
        flush_timeout: timing.flush_timeout,
        reconnect_max: timing.reconnect_max,
        export,
        import,
        location: ctx.loc(key.pos),
    })
}

/// The bridge's entries without `password`, which is refused with its own message (not
/// "unknown key"): an inline secret does not belong in a file that is printed and shared.
fn bridge_entries(node: &Node, path: &str, name: &str, ctx: &mut Ctx) -> Option<Vec<(Key, Node)>> {
    let entries = ctx.map(node, path, &format!("bridge `{name}`"))?;
    for (k, _) in entries.iter().filter(|(k, _)| k.name == "password") {
        ctx.error(
            k.pos,
            &format!("{path}.password"),
            "an inline `password` is not allowed: the compose file is printed, shared and committed in plain text",
            Some("put it in an environment variable and write `password_env: MQTT_PASSWORD`, or in a file: `password_file: ./secrets/mqtt-password`".into()),
        );
    }
    Some(entries.iter().filter(|(k, _)| k.name != "password").cloned().collect())
}

/// `url:` as written and parsed; required.
fn decode_url(key: &Key, f: &Fields, ctx: &mut Ctx, ok: &mut bool) -> Option<(String, BrokerUrl)> {
    let Some((_, v)) = f.get("url") else {
        ctx.error(
            key.pos,
            &f.key("url"),
            format!("bridge `{}` has no `url`", key.name),
            Some("add the broker's address, e.g. `url: mqtt://127.0.0.1:1883`".into()),
        );
        *ok = false;
        return None;
    };
    let Some(text) = ctx.string(&v, &f.key("url"), "`url`") else {
        *ok = false;
        return None;
    };
    match parse_url(&text) {
        Ok(parsed) => Some((text, parsed)),
        Err(e) => {
            ctx.error(v.pos, &f.key("url"), e.message, e.hint);
            *ok = false;
            None
        }
    }
}

/// `client_id:`; empty means "the default", filled in once the project name is known.
fn decode_client_id(f: &Fields, ctx: &mut Ctx, ok: &mut bool) -> String {
    let Some((_, v)) = f.get("client_id") else {
        return String::new();
    };
    let Some(id) = ctx.string(&v, &f.key("client_id"), "`client_id`") else {
        return String::new();
    };
    if id.is_empty() || id.len() > 256 || id.contains('\0') {
        ctx.error(
            v.pos,
            &f.key("client_id"),
            "`client_id` must be 1 to 256 characters without NUL",
            Some("remove it to use the default `shoal-<project>-<bridge>`".into()),
        );
        *ok = false;
        return String::new();
    }
    id
}

/// User name and password, each from one of its keys; a password needs a user name.
fn credentials(key: &Key, f: &Fields, ctx: &mut Ctx, ok: &mut bool) -> (Option<SecretRef>, Option<SecretRef>) {
    let username = secret(
        ctx,
        &f.path,
        f.get("username"),
        f.get("username_env"),
        None,
        "username",
        ok,
    );
    let password = secret(
        ctx,
        &f.path,
        None,
        f.get("password_env"),
        f.get("password_file"),
        "password",
        ok,
    );
    if password.is_some() && username.is_none() {
        let pos = f
            .get("password_env")
            .or(f.get("password_file"))
            .map_or(key.pos, |(k, _)| k.pos);
        ctx.error(
            pos,
            &f.key("password"),
            format!("bridge `{}` has a password but no user name", key.name),
            Some("add `username: NAME` or `username_env: VARIABLE`".into()),
        );
        *ok = false;
    }
    (username, password)
}

/// `tls:`: files that exist, a certificate with its key, and only on an `mqtts://` URL.
fn decode_tls(name: &str, f: &Fields, url: Option<&BrokerUrl>, ctx: &mut Ctx, ok: &mut bool) -> BridgeTls {
    let mut tls = BridgeTls::default();
    let Some((k, v)) = f.get("tls") else {
        return tls;
    };
    let tls_path = f.key("tls");
    if let Some(m) = ctx.map(&v, &tls_path, "`tls`") {
        for (fk, fv) in ctx.check_keys(m, BridgeTlsFile::KEYS, None, &tls_path, "in `tls`") {
            if matches!(fv.value, Value::Null) {
                continue;
            }
            let kp = format!("{tls_path}.{}", fk.name);
            let Some(p) = ctx.string(fv, &kp, &format!("`{}`", fk.name)) else {
                *ok = false;
                continue;
            };
            let abs = ctx.resolve(&p);
            if !abs.is_file() {
                ctx.error(
                    fv.pos,
                    &kp,
                    format!("TLS file {} does not exist", abs.display()),
                    Some("paths are relative to the compose file's folder".into()),
                );
                *ok = false;
                continue;
            }
            match fk.name.as_str() {
                "ca_file" => tls.ca_file = Some(abs),
                "cert_file" => tls.cert_file = Some(abs),
                _ => tls.key_file = Some(abs),
            }
        }
        let has = |field: &str| {
            m.iter()
                .any(|(fk, fv)| fk.name == field && !matches!(fv.value, Value::Null))
        };
        if has("cert_file") != has("key_file") {
            ctx.error(
                k.pos,
                &tls_path,
                "`tls.cert_file` and `tls.key_file` go together",
                Some("a client certificate needs its private key; set both or neither".into()),
            );
            *ok = false;
        }
    }
    if url.is_some_and(|u| !u.use_tls) {
        ctx.error(
            k.pos,
            &tls_path,
            format!("bridge `{name}` sets `tls` but its URL is `mqtt://` (plain TCP)"),
            Some("use `mqtts://` to connect with TLS".into()),
        );
        *ok = false;
    }
    tls
}

/// The bridge's durations.
struct Timing {
    keep_alive: Duration,
    session_expiry: Duration,
    flush_timeout: Duration,
    reconnect_max: Duration,
}

fn decode_timing(f: &Fields, ctx: &mut Ctx, ok: &mut bool) -> Timing {
    let keep_alive = duration(ctx, f, "keep_alive", DEFAULT_KEEP_ALIVE, ok, |d| {
        // The MQTT client refuses shorter intervals; the protocol field is 16 bits of seconds.
        (Duration::from_secs(5)..=Duration::from_secs(65535))
            .contains(&d)
            .then_some(())
            .ok_or("`keep_alive` must be between `5s` and `65535s`")
    });
    let session_expiry = duration(ctx, f, "session_expiry", DEFAULT_SESSION_EXPIRY, ok, |d| {
        (d.as_secs() <= u64::from(u32::MAX))
            .then_some(())
            .ok_or("`session_expiry` must be at most 4294967295s (about 136 years)")
    });
    let flush_timeout = duration(ctx, f, "flush_timeout", DEFAULT_FLUSH_TIMEOUT, ok, |_| Ok(()));
    let reconnect_max = duration(ctx, f, "reconnect_max", DEFAULT_RECONNECT_MAX, ok, |d| {
        (d >= MIN_RECONNECT_MAX)
            .then_some(())
            .ok_or("`reconnect_max` must be at least `250ms`")
    });
    Timing {
        keep_alive,
        session_expiry,
        flush_timeout,
        reconnect_max,
    }
}

/// One duration field through [`Ctx::duration`], then its own range `check`; the default
/// when absent or wrong.
fn duration(
    ctx: &mut Ctx,
    f: &Fields,
    field: &str,
    default: Duration,
    ok: &mut bool,
    check: impl Fn(Duration) -> Result<(), &'static str>,
) -> Duration {
    let Some((k, v)) = f.get(field) else {
        return default;
    };
    let kp = f.key(&k.name);
    let Some(d) = ctx.duration(&v, &kp, &format!("`{}`", k.name), "30s") else {
        *ok = false;
        return default;
    };
    match check(d) {
        Ok(()) => d,
        Err(e) => {
            ctx.error(v.pos, &kp, e, None);
            *ok = false;
            default
        }
    }
}

/// `queue:`, in messages.
fn decode_queue(f: &Fields, ctx: &mut Ctx, ok: &mut bool) -> usize {
    let Some((_, v)) = f.get("queue") else {
        return DEFAULT_QUEUE;
    };
    let kp = f.key("queue");
    match ctx.int(&v, &kp, "`queue`") {
        Some(n) if (1..=MAX_QUEUE).contains(&n) => n as usize,
        Some(n) => {
            ctx.error(
                v.pos,
                &kp,
                format!("`queue` must be between 1 and {MAX_QUEUE} messages, found {n}"),
                None,
            );
            *ok = false;
            DEFAULT_QUEUE
        }
        None => {
            *ok = false;
            DEFAULT_QUEUE
        }
    }
}

/// A credential from its possible keys: `plain` (user name only), `NAME_env`, `NAME_file`.
fn secret(
    ctx: &mut Ctx,
    path: &str,
    plain: Option<(Key, Node)>,
    env: Option<(Key, Node)>,
    file: Option<(Key, Node)>,
    what: &str,
    ok: &mut bool,
) -> Option<SecretRef> {
    let given: Vec<&(Key, Node)> = [&plain, &env, &file].into_iter().flatten().collect();
    if given.len() > 1 {
        let names: Vec<String> = given.iter().map(|(k, _)| format!("`{}`", k.name)).collect();
        ctx.error(
            given[1].0.pos,
            &format!("{path}.{}", given[1].0.name),
            format!("set the {what} once: {} are both given", names.join(" and ")),
            Some(format!("keep one of {}", names.join(", "))),
        );
        *ok = false;
        return None;
    }
    let (k, v) = given.first()?;
    let kp = format!("{path}.{}", k.name);
    let text = ctx.string(v, &kp, &format!("`{}`", k.name))?;
    if k.name.ends_with("_env") {
        if text.is_empty() || text.contains(['=', '\0']) {
            ctx.error(
                v.pos,
                &kp,
                format!("`{text}` is not an environment variable name"),
                None,
            );
            *ok = false;
            return None;
        }
        if !ctx.opts.env.contains_key(&text) {
            ctx.error(
                v.pos,
                &kp,
                format!("environment variable `{text}` (the bridge's {what}) is not set"),
                Some(format!("set it before starting shoal: `export {text}=...`")),
            );
            *ok = false;
            return None;
        }
        Some(SecretRef::Env(text))
    } else if k.name.ends_with("_file") {
        let abs = ctx.resolve(&text);
        if !abs.is_file() {
            ctx.error(
                v.pos,
                &kp,
                format!("{what} file {} does not exist", abs.display()),
                Some("paths are relative to the compose file's folder".into()),
            );
            *ok = false;
            return None;
        }
        Some(SecretRef::File(abs))
    } else if text.is_empty() {
        ctx.error(v.pos, &kp, format!("`{}` is empty", k.name), None);
        *ok = false;
        None
    } else {
        Some(SecretRef::Plain(text))
    }
}

// The file format of this section, as the JSON schema describes it (see `schema.rs`).

/// One MQTT bridge (MQTT 5). Credentials are references only: an inline `password` is refused.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BridgeFile {
    /// Broker URL: `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default port 8883).
    #[schemars(regex(pattern = r"^mqtts?://"))]
    pub url: String,
    /// MQTT client id. Default `<project>-<bridge>-<hash>`, the hash of the board's /etc/machine-id (or `SHOAL_BOARD_ID`, or the host name), project and bridge: unique per board, at most 23 bytes.
    pub client_id: Option<String>,
    /// User name, written here (not a secret). Or use `username_env`.
    pub username: Option<String>,
    /// Environment variable holding the user name.
    pub username_env: Option<String>,
    /// Environment variable holding the password (read when the bridge connects).
    pub password_env: Option<String>,
    /// File holding the password (relative to the compose file; one trailing newline is ignored).
    pub password_file: Option<String>,
    /// TLS files for `mqtts://`.
    pub tls: Option<BridgeTlsFile>,
    /// Keep-alive interval, from `5s` to `65535s`; default `30s`.
    pub keep_alive: Option<String>,
    /// How long the broker keeps this bridge's session (subscriptions, QoS 1 messages queued for it) while disconnected, e.g. `1h` (default). `0s`: a clean session on every connect.
    pub session_expiry: Option<String>,
    /// Exported messages held while the link is down; when full the oldest is dropped and counted. Default 1000.
    #[schemars(range(min = 1, max = 1000000))]
    pub queue: Option<u32>,
    /// How long a stopping stack waits for queued exports to reach the broker, e.g. `5s` (default).
    pub flush_timeout: Option<String>,
    /// Longest wait between reconnection attempts, e.g. `30s` (default). The wait starts at 250ms and doubles.
    pub reconnect_max: Option<String>,
    /// Local topics to publish on the broker. A bare string is `{local: STRING}`.
    pub export: Option<Vec<ExportFile>>,
    /// Broker topics to deliver to local subscribers. A bare string is `{remote: STRING}`.
    pub import: Option<Vec<ImportFile>>,
}

impl BridgeFile {
    pub const KEYS: &'static [&'static str] = &[
        "url",
        "client_id",
        "username",
        "username_env",
        "password_env",
        "password_file",
        "tls",
        "keep_alive",
        "session_expiry",
        "queue",
        "flush_timeout",
        "reconnect_max",
        "export",
        "import",
    ];
}

/// TLS files (PEM), relative to the compose file.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BridgeTlsFile {
    /// CA certificate(s) the broker's certificate must chain to. Default: the system's roots.
    pub ca_file: Option<String>,
    /// Client certificate (chain), for brokers that require one. Needs `key_file`.
    pub cert_file: Option<String>,
    /// Private key of `cert_file`.
    pub key_file: Option<String>,
}

impl BridgeTlsFile {
    pub const KEYS: &'static [&'static str] = &["ca_file", "cert_file", "key_file"];
}
