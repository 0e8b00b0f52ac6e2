//! Unknown keys: the Docker Compose keys shoal deliberately lacks (one table, so the wording
//! stays consistent and is easy to extend), and a did-you-mean hint for every other one.

use super::Ctx;
use crate::diagnostic::did_you_mean_hint;
use crate::node::{Key, Node};

/// Where a key is: the top level or inside a container. Docker-only keys differ per scope.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Top,
    Container,
}

/// Keys from Docker Compose that shoal deliberately lacks, with why and what to use instead.
/// One table so the wording stays consistent and is easy to extend. A warning entry is
/// accepted and ignored; everything else is an error.
#[rustfmt::skip]
pub const DOCKER_KEYS: &[(Scope, &str, bool, &str, &str)] = &[
    // (scope, key, is_warning, message, hint)
    (Scope::Top, "services", false, "shoal calls them `containers`", "rename `services:` to `containers:`"),
    (Scope::Top, "version", true, "`version` is obsolete and ignored (as in Docker Compose)", "remove the `version:` line"),
    (Scope::Top, "volumes", false, "shoal has no named volumes", "mount a host folder with `mounts: [./data:/data]` in the container"),
    (Scope::Top, "networks", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe` in the containers"),
    (Scope::Top, "configs", false, "shoal has no configs", "mount a host folder with `mounts:` or use `env_file`"),
    (Scope::Top, "include", false, "shoal does not load other files from inside a compose file", "name each file on the command line instead: `-f base.yaml -f board.yaml` merges them in order (see README: Many boards)"),
    (Scope::Container, "extends", false, "shoal has no `extends`", "put the shared settings in a base file and the differences in an override file: `-f base.yaml -f board.yaml`, or reuse a block with a YAML anchor under an `x-` key"),
    (Scope::Top, "secrets", false, "shoal has no secrets store", "mount a read-only host folder with `mounts: [./secrets:/run/secrets:ro]`"),
    (Scope::Container, "ports", false, "shoal containers have no network, so there are no ports to publish", "containers talk over topics: use `publish`/`subscribe`"),
    (Scope::Container, "expose", false, "shoal containers have no network, so there are no ports to expose", "containers talk over topics: use `publish`/`subscribe`"),
    (Scope::Container, "networks", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe`"),
    (Scope::Container, "network_mode", false, "shoal containers have no network; they exchange messages over topics", "use `publish`/`subscribe`"),
    (Scope::Container, "privileged", false, "shoal has no privileged mode: a guest gets exactly the host APIs it is granted", "list what it needs in `capabilities`"),
    (Scope::Container, "cap_add", false, "Linux capabilities do not apply to WebAssembly guests", "grant host APIs with `capabilities: [messaging, timers, sensors]`"),
    (Scope::Container, "cap_drop", false, "Linux capabilities do not apply to WebAssembly guests", "a guest only gets what `capabilities` lists; remove `cap_drop`"),
    (Scope::Container, "build", false, "shoal runs prebuilt .wasm images", "build with cargo/clang and point `image` at the .wasm"),
    (Scope::Container, "volumes", false, "shoal has no volumes", "use `mounts: [host:guest]`"),
    (Scope::Container, "environment", false, "shoal calls it `env`", "rename `environment:` to `env:`"),
    (Scope::Container, "command", false, "a wasm module has one entry point; shoal passes arguments with `args`", "use `args: [...]`"),
    (Scope::Container, "entrypoint", false, "a wasm module has one entry point; shoal passes arguments with `args`", "use `args: [...]`"),
    (Scope::Container, "healthcheck", false, "shoal has no health checks", "for an init step, use `depends_on: {NAME: {condition: service_completed_successfully}}`"),
    (Scope::Container, "user", false, "WebAssembly guests run as no OS user; access is limited by `mounts` and `capabilities`", "remove `user`"),
    (Scope::Container, "devices", false, "WebAssembly guests cannot open host devices", "declare a top-level `sensors:` entry and list it in the container's `sensors`"),
    (Scope::Container, "deploy", false, "shoal has no `deploy` section", "use `replicas` and `limits` directly in the container"),
    (Scope::Container, "scale", false, "shoal calls it `replicas`", "use `replicas: N`"),
    (Scope::Container, "mem_limit", false, "shoal sets memory under `limits`", "use `limits: {memory: 1MiB}`"),
    (Scope::Container, "container_name", false, "the key under `containers:` is the container's name", "rename the key instead"),
    (Scope::Container, "restart_policy", false, "shoal calls it `restart`", "use `restart: on-failure:5`"),
];

impl Ctx<'_> {
    /// Reports keys not in `known`: Docker-only keys with their specific message, others with a
    /// did-you-mean hint. Returns the entries whose keys are known.
    pub(crate) fn check_keys<'n>(
        &mut self,
        entries: &'n [(Key, Node)],
        known: &[&str],
        scope: Option<Scope>,
        prefix: &str,
        context: &str,
    ) -> Vec<&'n (Key, Node)> {
        let mut out = Vec::new();
        for entry in entries {
            let k = &entry.0;
            if known.contains(&k.name.as_str()) {
                out.push(entry);
                continue;
            }
            // Compose's extension fields (`x-common: &common ...`) hold YAML anchors for reuse;
            // they are ignored, as in Compose.
            if scope.is_some() && k.name.starts_with("x-") {
                continue;
            }
            let path = join_key(prefix, &k.name);
            let docker = scope.and_then(|s| DOCKER_KEYS.iter().find(|d| d.0 == s && d.1 == k.name));
            if let Some(&(_, name, warning, msg, hint)) = docker {
                if warning {
                    self.warn(k.pos, &path, msg.to_string(), Some(hint.to_string()));
                } else {
                    let message = format!("`{name}` is not supported: {msg}");
                    self.error(k.pos, &path, message, Some(hint.to_string()));
                }
            } else {
                let hint = did_you_mean_hint(&k.name, known.iter().copied());
                self.error(k.pos, &path, format!("unknown key `{}` {context}", k.name), hint);
            }
        }
        out
    }
}

fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
