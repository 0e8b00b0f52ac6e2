//! Registry credentials, never from the compose file:
//!
//! 1. `SHOAL_REGISTRY_USER` with `SHOAL_REGISTRY_PASSWORD_FILE` (a file holding the
//!    password, as systemd credentials and Docker secrets provide them) or
//!    `SHOAL_REGISTRY_PASSWORD`; they apply to every registry, or only to
//!    `SHOAL_REGISTRY_HOST` (`host[:port]`) when that is set.
//! 2. Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): the `auths` entry of the registry, its base64 `auth`
//!    (`user:password`) or `username`/`password`. Credential helpers (`credsStore`,
//!    `credHelpers`) are not run: shoal says so when one is configured for the registry.
//! 3. Anonymous.

use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

/// The credentials for `registry` (`host[:port]`, as in the reference).
pub fn credentials(registry: &str) -> RegistryAuth {
    if let Some(auth) = from_env(registry) {
        return auth;
    }
    match docker_config() {
        Some(config) => from_docker_config(&config, registry).unwrap_or(RegistryAuth::Anonymous),
        None => RegistryAuth::Anonymous,
    }
}

fn from_env(registry: &str) -> Option<RegistryAuth> {
    let user = std::env::var("SHOAL_REGISTRY_USER").ok().filter(|u| !u.is_empty())?;
    if let Ok(host) = std::env::var("SHOAL_REGISTRY_HOST") {
        if !host.is_empty() && host != registry {
            return None;
        }
    }
    let password = match std::env::var_os("SHOAL_REGISTRY_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        Some(file) => match std::fs::read_to_string(&file) {
            // One trailing newline is the editor's, not the password's.
            Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
            Err(e) => {
                eprintln!(
                    "warning: cannot read SHOAL_REGISTRY_PASSWORD_FILE {}: {e}; pulling without credentials",
                    PathBuf::from(file).display()
                );
                return None;
            }
        },
        None => std::env::var("SHOAL_REGISTRY_PASSWORD").unwrap_or_default(),
    };
    Some(RegistryAuth::Basic(user, password))
}

fn docker_config() -> Option<serde_json::Value> {
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
    };
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The `auths` entry for `registry` in a Docker `config.json`.
fn from_docker_config(config: &serde_json::Value, registry: &str) -> Option<RegistryAuth> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        (host == registry).then_some(value)
    });
    let Some(entry) = entry else {
        let helper =
            config.get("credHelpers").and_then(|h| h.get(registry)).is_some() || config.get("credsStore").is_some();
        if helper {
            eprintln!(
                "warning: ~/.docker/config.json names a credential helper for {registry}; shoal does not run \
                 credential helpers (set SHOAL_REGISTRY_USER and SHOAL_REGISTRY_PASSWORD_FILE instead)"
            );
        }
        return None;
    };
    if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password").and_then(|p| p.as_str()).unwrap_or_default();
    Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_auths_by_host() {
        let config = serde_json::json!({
            "auths": {
                "https://registry.example/v1/": { "auth": "dXNlcjpwYTpzcw==" },
                "localhost:5000": { "username": "u", "password": "p" }
            }
        });
        match from_docker_config(&config, "registry.example") {
            Some(RegistryAuth::Basic(u, p)) => assert_eq!((u.as_str(), p.as_str()), ("user", "pa:ss")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_docker_config(&config, "localhost:5000"),
            Some(RegistryAuth::Basic(..))
        ));
        assert!(from_docker_config(&config, "other.example").is_none());
    }
}
