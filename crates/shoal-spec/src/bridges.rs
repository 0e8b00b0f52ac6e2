//! The `bridges:` section: external MQTT brokers the stack's topics are bridged to.
//!
//! Shape (a map of named bridges, like `containers:`):
//!
//! ```yaml
//! bridges:
//!   uplink:
//!     url: mqtts://broker.example:8883
//!     username: board-7
//!     password_env: MQTT_PASSWORD
//!     tls: {ca_file: ./ca.pem}
//!     export: [{local: "sensors/", remote: "line-3/sensors/", qos: 1}]
//!     import: [{remote: "line-3/commands/#", local: "commands/"}]
//! ```
//!
//! Credentials are references only. An inline `password:` is refused with a hint, because a
//! compose file is printed (`shoal config`), shared and committed; the referenced variable
//! or file is checked here and read only when the bridge connects.

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode::{is_valid_name, sanitize_name, Ctx};
use super::model::{BridgeSpec, BridgeTls, ExportRule, ImportRule, Location, SecretRef};
use super::node::{Key, Node, Pos, Value};
use super::schema::{BridgeFile, BridgeTlsFile, ExportRuleFile, ImportRuleFile};
use super::units::parse_duration;

/// Default bound of a bridge's export queue, in messages.
pub const DEFAULT_QUEUE: usize = 1000;
/// Largest accepted `queue:` (each queued message may hold up to 64 KiB of payload).
pub const MAX_QUEUE: i64 = 1_000_000;
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
pub const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(3600);
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Shortest accepted `reconnect_max` (the first wait after a lost link is 250 ms).
pub const MIN_RECONNECT_MAX: Duration = Duration::from_millis(250);

/// Decodes `bridges:`. Client ids left empty here are filled by [`fill_client_ids`] once the
/// project name is known.
pub fn decode_bridges(node: &Node, ctx: &mut Ctx) -> Vec<BridgeSpec> {
    let mut out = Vec::new();
    if matches!(node.value, Value::Null) {
        return out;
    }
    let Some(entries) = ctx.map(node, "bridges", "`bridges`") else {
        return out;
    };
    for (key, value) in entries {
        if let Some(bridge) = decode_bridge(key, value, ctx) {
            out.push(bridge);
        }
    }
    out
}

/// Gives every bridge without a `client_id` the default `shoal-<project>-<bridge>`, and
/// reports two bridges of the stack sharing one id (a broker disconnects the older
/// connection when a second one uses the same id, so the two would take turns forever).
pub fn fill_client_ids(bridges: &mut [BridgeSpec], project: &str, ctx: &mut Ctx) {
    let mut seen: BTreeMap<(String, String), Location> = BTreeMap::new();
    for bridge in bridges.iter_mut() {
        if bridge.client_id.is_empty() {
            bridge.client_id = format!("shoal-{project}-{}", bridge.name);
        }
        let key = (bridge.url.clone(), bridge.client_id.clone());
        if let Some(first) = seen.get(&key) {
            let d = super::Diagnostic::error(
                Some(bridge.location.clone()),
                format!("bridges.{}.client_id", bridge.name),
                format!(
                    "bridge `{}` uses client id `{}` on {} like the bridge at line {}",
                    bridge.name, bridge.client_id, bridge.url, first.line
                ),
            )
            .with_hint("give each bridge its own `client_id`: the broker keeps only one connection per id");
            ctx.diags.push(d);
        } else {
            seen.insert(key, bridge.location.clone());
        }
    }
}

fn decode_bridge(key: &Key, node: &Node, ctx: &mut Ctx) -> Option<BridgeSpec> {
    let name = &key.name;
    let path = format!("bridges.{name}");
    if !is_valid_name(name) {
        ctx.error(
            key.pos,
            &path,
            format!("invalid bridge name `{name}`: use lowercase letters, digits, `-` and `_`"),
            Some(format!("for example `{}`", sanitize_name(name))),
        );
    }
    let entries = ctx.map(node, &path, &format!("bridge `{name}`"))?;
    // An inline password gets its own message, not "unknown key".
    for (k, _) in entries.iter().filter(|(k, _)| k.name == "password") {
        ctx.error(
            k.pos,
            &format!("{path}.password"),
            "an inline `password` is not allowed: the compose file is printed, shared and committed in plain text",
            Some("put it in an environment variable and write `password_env: MQTT_PASSWORD`, or in a file: `password_file: ./secrets/mqtt-password`".into()),
        );
    }
    let entries: Vec<(Key, Node)> = entries.iter().filter(|(k, _)| k.name != "password").cloned().collect();
    let fields = ctx.check_keys(&entries, BridgeFile::KEYS, None, &path, &format!("in bridge `{name}`"));
    let get = |field: &str| {
        fields
            .iter()
            .find(|(k, v)| k.name == field && !matches!(v.value, Value::Null))
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    let mut ok = true;

    let mut url = None;
    match get("url") {
        None => {
            ctx.error(
                key.pos,
                &format!("{path}.url"),
                format!("bridge `{name}` has no `url`"),
                Some("add the broker's address, e.g. `url: mqtt://127.0.0.1:1883`".into()),
            );
            ok = false;
        }
        Some((_, v)) => match ctx.string(&v, &format!("{path}.url"), "`url`") {
            Some(text) => match parse_url(&text) {
                Ok(parsed) => url = Some((text, parsed)),
                Err((message, hint)) => {
                    ctx.error(v.pos, &format!("{path}.url"), message, hint);
                    ok = false;
                }
            },
            None => ok = false,
        },
    }

    let mut client_id = String::new();
    if let Some((_, v)) = get("client_id") {
        if let Some(id) = ctx.string(&v, &format!("{path}.client_id"), "`client_id`") {
            if id.is_empty() || id.len() > 256 || id.contains('\0') {
                ctx.error(
                    v.pos,
                    &format!("{path}.client_id"),
                    "`client_id` must be 1 to 256 characters without NUL",
                    Some("remove it to use the default `shoal-<project>-<bridge>`".into()),
                );
                ok = false;
            } else {
                client_id = id;
            }
        }
    }

    let username = secret(
        ctx,
        &path,
        get("username"),
        get("username_env"),
        None,
        "username",
        &mut ok,
    );
    let password = secret(
        ctx,
        &path,
        None,
        get("password_env"),
        get("password_file"),
        "password",
        &mut ok,
    );
    if password.is_some() && username.is_none() {
        let pos = get("password_env")
            .or(get("password_file"))
            .map_or(key.pos, |(k, _)| k.pos);
        ctx.error(
            pos,
            &format!("{path}.password"),
            format!("bridge `{name}` has a password but no user name"),
            Some("add `username: NAME` or `username_env: VARIABLE`".into()),
        );
        ok = false;
    }

    let mut tls = BridgeTls::default();
    let mut tls_key_pos = None;
    if let Some((k, v)) = get("tls") {
        tls_key_pos = Some(k.pos);
        if let Some(m) = ctx.map(&v, &format!("{path}.tls"), "`tls`") {
            let tls_path = format!("{path}.tls");
            for (fk, fv) in ctx.check_keys(m, BridgeTlsFile::KEYS, None, &tls_path, "in `tls`") {
                if matches!(fv.value, Value::Null) {
                    continue;
                }
                let kp = format!("{tls_path}.{}", fk.name);
                let Some(p) = ctx.string(fv, &kp, &format!("`{}`", fk.name)) else {
                    ok = false;
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
                    ok = false;
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
                ok = false;
            }
        }
    }
    if let (Some(pos), Some((_, parsed))) = (tls_key_pos, &url) {
        if !parsed.use_tls {
            ctx.error(
                pos,
                &format!("{path}.tls"),
                format!("bridge `{name}` sets `tls` but its URL is `mqtt://` (plain TCP)"),
                Some("use `mqtts://` to connect with TLS".into()),
            );
            ok = false;
        }
    }

    let keep_alive = duration(ctx, get("keep_alive"), &path, DEFAULT_KEEP_ALIVE, &mut ok, |d| {
        // The MQTT client refuses shorter intervals; the protocol field is 16 bits of seconds.
        (Duration::from_secs(5)..=Duration::from_secs(65535))
            .contains(&d)
            .then_some(())
            .ok_or("`keep_alive` must be between `5s` and `65535s`")
    });
    let session_expiry = duration(
        ctx,
        get("session_expiry"),
        &path,
        DEFAULT_SESSION_EXPIRY,
        &mut ok,
        |d| {
            (d.as_secs() <= u64::from(u32::MAX))
                .then_some(())
                .ok_or("`session_expiry` must be at most 4294967295s (about 136 years)")
        },
    );
    let flush_timeout = duration(ctx, get("flush_timeout"), &path, DEFAULT_FLUSH_TIMEOUT, &mut ok, |_| {
        Ok(())
    });
    let reconnect_max = duration(ctx, get("reconnect_max"), &path, DEFAULT_RECONNECT_MAX, &mut ok, |d| {
        (d >= MIN_RECONNECT_MAX)
            .then_some(())
            .ok_or("`reconnect_max` must be at least `250ms`")
    });

    let mut queue = DEFAULT_QUEUE;
    if let Some((_, v)) = get("queue") {
        let kp = format!("{path}.queue");
        match ctx.int(&v, &kp, "`queue`") {
            Some(n) if (1..=MAX_QUEUE).contains(&n) => queue = n as usize,
            Some(n) => {
                ctx.error(
                    v.pos,
                    &kp,
                    format!("`queue` must be between 1 and {MAX_QUEUE} messages, found {n}"),
                    None,
                );
                ok = false;
            }
            None => ok = false,
        }
    }

    let export = match get("export") {
        Some((_, v)) => rules(ctx, &v, &format!("{path}.export"), &mut ok, export_rule),
        None => Vec::new(),
    };
    let import = match get("import") {
        Some((_, v)) => rules(ctx, &v, &format!("{path}.import"), &mut ok, import_rule),
        None => Vec::new(),
    };
    if ok && export.is_empty() && import.is_empty() {
        ctx.warn(
            key.pos,
            &path,
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
        keep_alive,
        session_expiry,
        queue,
        flush_timeout,
        reconnect_max,
        export,
        import,
        location: ctx.loc(key.pos),
    })
}

/// A broker address from `url:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub use_tls: bool,
    pub host: String,
    pub port: u16,
}

/// Parses `mqtt://host[:port]` / `mqtts://host[:port]` (IPv6 as `[::1]`); the error is a
/// message and a hint.
pub fn parse_url(text: &str) -> Result<BrokerUrl, (String, Option<String>)> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err((
            format!("`{text}` is not a broker URL"),
            Some(format!("write `mqtt://{text}` (or `mqtts://` for TLS)")),
        ));
    };
    let use_tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" => false,
        "mqtts" => true,
        "tcp" => {
            return Err((
                format!("unknown URL scheme `{scheme}://`"),
                Some(format!("write `mqtt://{rest}`")),
            ))
        }
        "ssl" | "tls" => {
            return Err((
                format!("unknown URL scheme `{scheme}://`"),
                Some(format!("write `mqtts://{rest}`")),
            ))
        }
        "ws" | "wss" => {
            return Err((
                "MQTT over WebSockets is not supported".into(),
                Some("use the broker's MQTT port: `mqtt://host:1883` or `mqtts://host:8883`".into()),
            ))
        }
        _ => {
            return Err((
                format!("unknown URL scheme `{scheme}://`"),
                Some("use `mqtt://` or `mqtts://` (TLS)".into()),
            ))
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err((
            "the broker URL must not hold credentials".into(),
            Some("use `username` and `password_env` or `password_file`".into()),
        ));
    }
    if authority.contains(['/', '?', '#']) {
        return Err((
            format!("the broker URL `{text}` has a path or query; only `{scheme}://host:port` is used"),
            Some(format!(
                "write `{scheme}://{}`",
                authority.split(['/', '?', '#']).next().unwrap_or("")
            )),
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) if port.starts_with(':') => (host, Some(&port[1..])),
            _ => {
                return Err((
                    format!("invalid IPv6 address in `{text}`"),
                    Some("write `mqtt://[::1]:1883`".into()),
                ))
            }
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err((
            format!("the broker URL `{text}` has no host"),
            Some("for example `mqtt://127.0.0.1:1883`".into()),
        ));
    }
    let port = match port {
        None => {
            if use_tls {
                8883
            } else {
                1883
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err((
                    format!("invalid port `{p}` in `{text}`"),
                    Some("a port is a number from 1 to 65535".into()),
                ))
            }
        },
    };
    Ok(BrokerUrl {
        use_tls,
        host: host.to_string(),
        port,
    })
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

fn duration(
    ctx: &mut Ctx,
    entry: Option<(Key, Node)>,
    path: &str,
    default: Duration,
    ok: &mut bool,
    check: impl Fn(Duration) -> Result<(), &'static str>,
) -> Duration {
    let Some((k, v)) = entry else {
        return default;
    };
    let kp = format!("{path}.{}", k.name);
    let parsed = match &v.value {
        Value::Str(s) => parse_duration(s),
        Value::Int(i) => parse_duration(&i.to_string()),
        other => Err(format!(
            "`{}` must be a duration such as `30s`, found {}",
            k.name,
            other.kind()
        )),
    };
    match parsed.and_then(|d| check(d).map(|()| d).map_err(str::to_string)) {
        Ok(d) => d,
        Err(e) => {
            ctx.error(v.pos, &kp, e, None);
            *ok = false;
            default
        }
    }
}

/// A list of rules, each a mapping or the short string form.
fn rules<T>(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    ok: &mut bool,
    one: fn(&mut Ctx, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Value::Seq(items) = &node.value else {
        ctx.error(
            node.pos,
            path,
            format!(
                "`{}` must be a list of rules, found {}",
                path.rsplit('.').next().unwrap_or(path),
                node.value.kind()
            ),
            None,
        );
        *ok = false;
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match one(ctx, item, &format!("{path}[{i}]")) {
            Some(rule) => out.push(rule),
            None => *ok = false,
        }
    }
    out
}

/// The fields of one rule: a mapping checked against `known`, or a bare string standing for
/// `short_key`.
fn rule_fields(ctx: &mut Ctx, node: &Node, path: &str, known: &[&str], short_key: &str) -> Option<Vec<(String, Node)>> {
    match &node.value {
        Value::Str(_) => Some(vec![(short_key.to_string(), node.clone())]),
        Value::Map(m) => {
            let fields = ctx.check_keys(m, known, None, path, "in rule");
            Some(
                fields
                    .into_iter()
                    .filter(|(_, v)| !matches!(v.value, Value::Null))
                    .map(|(k, v)| (k.name.clone(), v.clone()))
                    .collect(),
            )
        }
        other => {
            ctx.error(
                node.pos,
                path,
                format!(
                    "a rule must be a mapping such as `{{{short_key}: ...}}`, found {}",
                    other.kind()
                ),
                None,
            );
            None
        }
    }
}

fn qos(ctx: &mut Ctx, fields: &[(String, Node)], path: &str) -> Option<u8> {
    let Some((_, v)) = fields.iter().find(|(k, _)| k == "qos") else {
        return Some(1);
    };
    let kp = format!("{path}.qos");
    match ctx.int(v, &kp, "`qos`")? {
        n @ (0 | 1) => Some(n as u8),
        2 => {
            ctx.error(
                v.pos,
                &kp,
                "QoS 2 is not supported by shoal's bridge",
                Some("use `qos: 1` (at least once; a duplicate is possible after a lost link)".into()),
            );
            None
        }
        n => {
            ctx.error(v.pos, &kp, format!("`qos` must be 0 or 1, found {n}"), None);
            None
        }
    }
}

fn text_field(ctx: &mut Ctx, fields: &[(String, Node)], name: &str, path: &str) -> Option<Option<(String, Pos)>> {
    match fields.iter().find(|(k, _)| k == name) {
        None => Some(None),
        Some((_, v)) => {
            let s = ctx.string(v, &format!("{path}.{name}"), &format!("`{name}`"))?;
            if s.contains('\0') {
                ctx.error(
                    v.pos,
                    &format!("{path}.{name}"),
                    format!("`{name}` contains a NUL character"),
                    None,
                );
                return None;
            }
            Some(Some((s, v.pos)))
        }
    }
}

fn export_rule(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ExportRule> {
    let fields = rule_fields(ctx, node, path, ExportRuleFile::KEYS, "local")?;
    let local = text_field(ctx, &fields, "local", path);
    let remote = text_field(ctx, &fields, "remote", path);
    let qos = qos(ctx, &fields, path);
    let (local, remote, qos) = (local?, remote?, qos?);
    let Some((local, _)) = local else {
        ctx.error(
            node.pos,
            path,
            "export rule has no `local` prefix",
            Some("for example `{local: \"sensors/\", remote: \"line-3/sensors/\"}`".into()),
        );
        return None;
    };
    let remote = match remote {
        None => {
            if let Err((message, hint)) = check_topic_prefix(&local) {
                ctx.error(
                    node.pos,
                    &format!("{path}.local"),
                    message,
                    hint.or(Some("set `remote:` to a prefix without them".into())),
                );
                return None;
            }
            local.clone()
        }
        Some((remote, pos)) => {
            if let Err((message, hint)) = check_topic_prefix(&remote) {
                ctx.error(pos, &format!("{path}.remote"), message, hint);
                return None;
            }
            remote
        }
    };
    Some(ExportRule { local, remote, qos })
}

fn import_rule(ctx: &mut Ctx, node: &Node, path: &str) -> Option<ImportRule> {
    let fields = rule_fields(ctx, node, path, ImportRuleFile::KEYS, "remote")?;
    let remote = text_field(ctx, &fields, "remote", path);
    let local = text_field(ctx, &fields, "local", path);
    let qos = qos(ctx, &fields, path);
    let (remote, local, qos) = (remote?, local?, qos?);
    let Some((remote, remote_pos)) = remote else {
        ctx.error(
            node.pos,
            path,
            "import rule has no `remote` filter",
            Some("for example `{remote: \"line-3/commands/#\", local: \"commands/\"}`".into()),
        );
        return None;
    };
    if let Err((message, hint)) = check_filter(&remote) {
        ctx.error(remote_pos, &format!("{path}.remote"), message, hint);
        return None;
    }
    let local = match local {
        None => filter_literal_prefix(&remote).to_string(),
        Some((local, pos)) => {
            if local.contains(['+', '#']) {
                let plain = local.split(['+', '#']).next().unwrap_or_default();
                ctx.error(
                    pos,
                    &format!("{path}.local"),
                    format!("local prefix `{local}` contains an MQTT wildcard; local topics are matched by prefix"),
                    Some(format!("write `{plain}`")),
                );
                return None;
            }
            local
        }
    };
    Some(ImportRule { remote, local, qos })
}

/// A prefix of MQTT topic names: no wildcards, not a `$` system topic.
pub fn check_topic_prefix(prefix: &str) -> Result<(), (String, Option<String>)> {
    if prefix.contains(['+', '#']) {
        return Err((
            format!(
                "topic prefix `{prefix}` contains an MQTT wildcard (`+` or `#`); a published topic cannot hold one"
            ),
            Some(format!(
                "write `{}`",
                prefix.split(['+', '#']).next().unwrap_or_default()
            )),
        ));
    }
    if prefix.starts_with('$') {
        return Err((
            format!("topic prefix `{prefix}` starts with `$`, which brokers reserve for their own topics"),
            None,
        ));
    }
    Ok(())
}

/// An MQTT topic filter: `+` a whole level, `#` a whole last level.
pub fn check_filter(filter: &str) -> Result<(), (String, Option<String>)> {
    if filter.is_empty() {
        return Err(("empty MQTT filter".into(), Some("use `#` for every topic".into())));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err((
                format!("invalid MQTT filter `{filter}`: `#` must be a whole level at the end"),
                Some("for example `factory/#`".into()),
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err((
                format!("invalid MQTT filter `{filter}`: `+` must be a whole level"),
                Some("for example `factory/+/temperature`".into()),
            ));
        }
    }
    Ok(())
}

/// The part of a filter before its first wildcard level (`a/b/` for `a/b/+/c/#`; the
/// whole filter when it has none).
pub fn filter_literal_prefix(filter: &str) -> &str {
    let mut end = 0;
    for level in filter.split_inclusive('/') {
        let bare = level.strip_suffix('/').unwrap_or(level);
        if bare == "+" || bare == "#" {
            return &filter[..end];
        }
        end += level.len();
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((u.use_tls, u.host.as_str(), u.port), (false, "127.0.0.1", 1884));
        let u = parse_url("mqtts://broker.example").unwrap();
        assert_eq!((u.use_tls, u.host.as_str(), u.port), (true, "broker.example", 8883));
        assert_eq!(parse_url("mqtt://host/").unwrap().port, 1883);
        let u = parse_url("mqtt://[::1]:2000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 2000));
        assert!(parse_url("tcp://h:1").unwrap_err().1.unwrap().contains("mqtt://h:1"));
        assert!(parse_url("ssl://h:1").unwrap_err().1.unwrap().contains("mqtts://h:1"));
        assert!(parse_url("h:1883").unwrap_err().1.unwrap().contains("mqtt://h:1883"));
        assert!(parse_url("mqtt://u:p@h").unwrap_err().0.contains("credentials"));
        assert!(parse_url("mqtt://h:0").is_err());
        assert!(parse_url("mqtt://h:99999").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://h/x").is_err());
        assert!(parse_url("wss://h").unwrap_err().0.contains("WebSockets"));
    }

    #[test]
    fn filters() {
        for good in ["#", "a/#", "+", "a/+/b", "+/+", "a/b", "a//b", "/"] {
            assert!(check_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "a/b+", "#/a"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(filter_literal_prefix("factory/commands/#"), "factory/commands/");
        assert_eq!(filter_literal_prefix("a/+/b/#"), "a/");
        assert_eq!(filter_literal_prefix("#"), "");
        assert_eq!(filter_literal_prefix("+/x"), "");
        assert_eq!(filter_literal_prefix("a/b"), "a/b");
    }

    #[test]
    fn topic_prefixes() {
        assert!(check_topic_prefix("line-3/sensors/").is_ok());
        assert!(check_topic_prefix("").is_ok());
        assert!(check_topic_prefix("a/#").unwrap_err().1.unwrap().contains("`a/`"));
        assert!(check_topic_prefix("$SYS/").is_err());
    }
}
