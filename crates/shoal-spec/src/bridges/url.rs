//! A bridge's `url:`: `mqtt://host[:port]` or `mqtts://host[:port]`, and nothing else a URL
//! could hold (credentials, a path), each refused with the spelling to use instead.

/// A broker address from `url:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub use_tls: bool,
    pub host: String,
    pub port: u16,
}

/// Why a `url:` is not a broker address, with a hint for the file's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UrlError {
    pub message: String,
    pub hint: Option<String>,
}

fn refuse(message: String, hint: impl Into<Option<String>>) -> UrlError {
    UrlError {
        message,
        hint: hint.into(),
    }
}

/// Parses `mqtt://host[:port]` / `mqtts://host[:port]` (IPv6 as `[::1]`).
pub fn parse_url(text: &str) -> Result<BrokerUrl, UrlError> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(refuse(
            format!("`{text}` is not a broker URL"),
            format!("write `mqtt://{text}` (or `mqtts://` for TLS)"),
        ));
    };
    let use_tls = scheme_uses_tls(scheme, rest)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    check_authority(text, scheme, authority)?;
    let (host, port) = split_host_port(text, authority)?;
    if host.is_empty() {
        return Err(refuse(
            format!("the broker URL `{text}` has no host"),
            "for example `mqtt://127.0.0.1:1883`".to_string(),
        ));
    }
    let port = match port {
        None if use_tls => 8883,
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(refuse(
                    format!("invalid port `{p}` in `{text}`"),
                    "a port is a number from 1 to 65535".to_string(),
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

/// `mqtt` (plain) or `mqtts` (TLS); other brokers' and clients' spellings get the one to use.
fn scheme_uses_tls(scheme: &str, rest: &str) -> Result<bool, UrlError> {
    match scheme.to_ascii_lowercase().as_str() {
        "mqtt" => Ok(false),
        "mqtts" => Ok(true),
        "tcp" => Err(refuse(
            format!("unknown URL scheme `{scheme}://`"),
            format!("write `mqtt://{rest}`"),
        )),
        "ssl" | "tls" => Err(refuse(
            format!("unknown URL scheme `{scheme}://`"),
            format!("write `mqtts://{rest}`"),
        )),
        "ws" | "wss" => Err(refuse(
            "MQTT over WebSockets is not supported".into(),
            "use the broker's MQTT port: `mqtt://host:1883` or `mqtts://host:8883`".to_string(),
        )),
        _ => Err(refuse(
            format!("unknown URL scheme `{scheme}://`"),
            "use `mqtt://` or `mqtts://` (TLS)".to_string(),
        )),
    }
}

/// No credentials (they belong in `username` / `password_env`) and no path or query.
fn check_authority(text: &str, scheme: &str, authority: &str) -> Result<(), UrlError> {
    if authority.contains('@') {
        return Err(refuse(
            "the broker URL must not hold credentials".into(),
            "use `username` and `password_env` or `password_file`".to_string(),
        ));
    }
    if authority.contains(['/', '?', '#']) {
        return Err(refuse(
            format!("the broker URL `{text}` has a path or query; only `{scheme}://host:port` is used"),
            format!(
                "write `{scheme}://{}`",
                authority.split(['/', '?', '#']).next().unwrap_or("")
            ),
        ));
    }
    Ok(())
}

/// Host and optional port text; an IPv6 host is written in brackets.
fn split_host_port<'a>(text: &str, authority: &'a str) -> Result<(&'a str, Option<&'a str>), UrlError> {
    if let Some(v6) = authority.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((host, "")) => Ok((host, None)),
            Some((host, port)) if port.starts_with(':') => Ok((host, Some(&port[1..]))),
            _ => Err(refuse(
                format!("invalid IPv6 address in `{text}`"),
                "write `mqtt://[::1]:1883`".to_string(),
            )),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
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
        assert!(parse_url("tcp://h:1").unwrap_err().hint.unwrap().contains("mqtt://h:1"));
        assert!(parse_url("ssl://h:1")
            .unwrap_err()
            .hint
            .unwrap()
            .contains("mqtts://h:1"));
        assert!(parse_url("h:1883").unwrap_err().hint.unwrap().contains("mqtt://h:1883"));
        assert!(parse_url("mqtt://u:p@h").unwrap_err().message.contains("credentials"));
        assert!(parse_url("mqtt://h:0").is_err());
        assert!(parse_url("mqtt://h:99999").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://h/x").is_err());
        assert!(parse_url("wss://h").unwrap_err().message.contains("WebSockets"));
        assert!(parse_url("mqtt://[::1").unwrap_err().message.contains("IPv6"));
    }
}
