//! From documents to a stack: the effective deployment and variables of this device
//! ([`effective`]), and the files, env file and images that deployment needs on disk
//! ([`prepare`]) before the controller loads it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::Settings;
use super::journal::{write_atomically, Entry, GoodState};
use crate::fleet::document::{sha256_hex, Verified};
use crate::fleet::topics::{self, Target};
use crate::images::ImageStore;
use crate::spec::names::ProjectName;
use crate::spec::{ComposeFiles, ImageDigest, ImageRef, ResolvedImage};

/// The env file the running stack reads (rewritten before each apply; the controller keeps
/// its path across reloads).
pub const LIVE_ENV: &str = "live.env";

/// The verified documents the agent holds, by topic.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub desired: BTreeMap<String, Verified>,
    pub vars: BTreeMap<String, Verified>,
}

/// One applied state: a deployment with the variables in force.
#[derive(Debug, Clone)]
pub struct State {
    /// `<source>@<revision>+vars:<hash8>`.
    pub id: String,
    pub source: Target,
    pub revision: u64,
    pub deployment: (String, Verified),
    pub vars: Vec<(String, Verified)>,
    pub variables: BTreeMap<String, String>,
    pub project: ProjectName,
    pub health_window: Duration,
}

impl State {
    /// The journal's record of this state.
    pub fn good(&self) -> GoodState {
        let entry = |(topic, doc): &(String, Verified)| Entry {
            topic: topic.clone(),
            envelope: doc.envelope.clone(),
        };
        GoodState {
            state_id: self.id.clone(),
            source: self.source.to_string(),
            revision: self.revision,
            deployment: entry(&self.deployment),
            vars: self.vars.iter().map(entry).collect(),
        }
    }
}

/// The device's effective state: its own deployment, else the first of its groups' in
/// order; variables from (highest first) `DEVICE_ID`/`DEVICE_GROUPS`, the device's vars,
/// the groups' vars in order, the deployment's own. `None` without any deployment.
pub fn effective(settings: &Settings, inputs: &Inputs) -> Option<State> {
    let own = Target::Device(settings.device.clone());
    let groups: Vec<Target> = settings.groups.iter().map(|g| Target::Group(g.clone())).collect();
    let (topic, doc) = std::iter::once(&own)
        .chain(&groups)
        .map(Target::desired_topic)
        .find_map(|t| inputs.desired.get(&t).map(|d| (t, d)))?;
    let mut variables = doc.payload.variables.clone();
    let mut vars = Vec::new();
    // Lowest first, so the higher ones overwrite.
    for target in groups.iter().rev().chain(std::iter::once(&own)) {
        let vars_topic = target.vars_topic();
        if let Some(v) = inputs.vars.get(&vars_topic) {
            variables.extend(v.payload.variables.clone());
            vars.push((vars_topic, v.clone()));
        }
    }
    vars.reverse();
    variables.insert("DEVICE_ID".into(), settings.device.clone());
    variables.insert("DEVICE_GROUPS".into(), settings.groups.join(","));
    let hash = sha256_hex(&serde_json::to_vec(&variables).unwrap_or_default());
    let source = doc.payload.target.clone();
    let revision = doc.payload.revision;
    let project = doc
        .payload
        .project
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| settings.project.clone());
    Some(State {
        id: format!("{source}@{revision}+vars:{}", &hash[..8]),
        source,
        revision,
        deployment: (topic, doc.clone()),
        vars,
        variables,
        project,
        health_window: doc.payload.health_window().unwrap_or(settings.health_window),
    })
}

/// The variables as an env file the compose loader reads like `--env-file`: every value
/// double-quoted with `\`, `"`, `$` and newlines escaped, so a value is taken literally
/// (no `${...}` inside it is expanded).
pub fn env_file_text(variables: &BTreeMap<String, String>) -> String {
    let mut text = String::from("# written by shoal agent: the device's variables for this deployment\n");
    for (name, value) in variables {
        let mut quoted = String::with_capacity(value.len() + 2);
        for c in value.chars() {
            match c {
                '\\' => quoted.push_str("\\\\"),
                '"' => quoted.push_str("\\\""),
                '$' => quoted.push_str("\\$"),
                '\n' => quoted.push_str("\\n"),
                '\r' => {}
                c => quoted.push(c),
            }
        }
        text.push_str(&format!("{name}=\"{quoted}\"\n"));
    }
    text
}

/// A state on disk, ready for the controller.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub compose: ComposeFiles,
}

/// Why a state could not be prepared; the text goes into the report's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrepareError(pub String);

/// Write the state's files to `revisions/<state id>/` and the live env file, check that
/// every image comes from a registry pinned in the deployment's `images`, and make sure
/// each pinned image is in the local store (pulled by digest when it is not). Blocking:
/// it may pull.
pub fn prepare(state: &State, state_dir: &Path, images: &ImageStore) -> Result<Prepared, PrepareError> {
    let fail = |m: String| PrepareError(m);
    let dir = state_dir.join("revisions").join(&state.id);
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let doc = &state.deployment.1.payload;
    let mut files = Vec::new();
    for file in &doc.files {
        let path = dir.join(&file.name);
        write_atomically(&path, file.text.as_bytes())
            .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
        files.push(path);
    }
    let env = env_file_text(&state.variables);
    let kept = dir.join("fleet.env");
    write_atomically(&kept, env.as_bytes()).map_err(|e| fail(format!("cannot write {}: {e}", kept.display())))?;
    let live = state_dir.join(LIVE_ENV);
    write_atomically(&live, env.as_bytes()).map_err(|e| fail(format!("cannot write {}: {e}", live.display())))?;
    let compose = ComposeFiles {
        files,
        env_files: Some(vec![live]),
        project_name: Some(state.project.clone()),
        profiles: Some(Vec::new()),
    };
    check_images(&compose, &doc.images)?;
    // One agent at a time in this process touches the store's records: many simulated
    // agents (`shoal bench fleet`) pulling the same image at once would otherwise race on
    // the store's temporary files.
    static STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = STORE.lock().unwrap_or_else(|e| e.into_inner());
    for (reference, digest) in &doc.images {
        ensure_image(images, reference, digest)?;
    }
    Ok(Prepared { compose })
}

/// Every container's image must be a registry reference the deployment pins.
fn check_images(compose: &ComposeFiles, pinned: &BTreeMap<String, String>) -> Result<(), PrepareError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let no_store = |_: &ImageDigest| None;
    let resolve = |reference: &str| {
        match pinned.get(reference).map(|d| d.parse::<ImageDigest>()) {
        Some(Ok(digest)) => Ok(ResolvedImage {
            pinned: digest.clone(),
            digest,
        }),
        _ => Err(format!(
            "image {reference} is not pinned in the deployment's `images` (fleet deployments run registry images by digest)"
        )),
    }
    };
    let options = crate::spec::LoadOptions {
        env: &env,
        lookup_digest: &no_store,
        resolve_reference: &resolve,
    };
    let (stack, _) = crate::spec::load_files(compose, &options)
        .map_err(|d| PrepareError(crate::spec::render_diagnostics(&d).trim_end().to_owned()))?;
    for container in &stack.containers {
        if !matches!(container.image, ImageRef::Registry { .. }) {
            return Err(PrepareError(format!(
                "container {}: images in fleet deployments come from a registry, pinned by digest in `images`; a local file or store digest is refused",
                container.name
            )));
        }
    }
    Ok(())
}

/// Make `reference` resolve to the image pinned at `digest` in the store: from a pull of
/// the same repository at that digest if there is one (no network: a board that boots
/// without its registry runs its last good stack), else pulled by digest now.
fn ensure_image(images: &ImageStore, reference: &str, digest: &str) -> Result<(), PrepareError> {
    let parsed = crate::registry::parse_reference(reference).map_err(|e| PrepareError(e.to_string()))?;
    if let Some(wanted) = parsed.digest() {
        if wanted != digest {
            return Err(PrepareError(format!(
                "image {reference} names digest {wanted} but the deployment pins {digest}"
            )));
        }
    }
    if images
        .find_reference(reference)
        .is_some_and(|r| r.pinned.to_string() == digest)
    {
        return Ok(());
    }
    let by_digest = format!("{}/{}@{digest}", parsed.registry(), parsed.repository());
    let pulled = match images.find_reference(&by_digest) {
        Some(found) => found,
        None => crate::registry::pull(images, &by_digest).map_err(|e| PrepareError(e.to_string()))?,
    };
    if pulled.pinned.to_string() != digest {
        return Err(PrepareError(format!(
            "image {reference}: the registry gave {} for digest {digest}",
            pulled.pinned
        )));
    }
    let record = crate::images::refs::PulledRef {
        reference: reference.to_owned(),
        ..pulled
    };
    images
        .record_reference(&record)
        .map_err(|e| PrepareError(e.to_string()))
}

/// The folder of a state's files.
pub fn revision_dir(state_dir: &Path, state_id: &str) -> PathBuf {
    state_dir.join("revisions").join(state_id)
}

/// Remove the revision folders of states other than the last good one and `keep`.
pub fn prune(state_dir: &Path, journal: &super::journal::Journal, keep: &str) {
    let Ok(entries) = std::fs::read_dir(state_dir.join("revisions")) else {
        return;
    };
    let good = journal.last_good.as_ref().map(|g| g.state_id.as_str());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != keep && Some(name.as_ref()) != good {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `topic` is one the agent reads documents from, and of which kind.
pub fn input_kind(topic: &str) -> Option<(Target, crate::fleet::document::Kind)> {
    use crate::fleet::document::Kind;
    match topics::parse(topic)? {
        (target, topics::Channel::Desired) => Some((target, Kind::Deployment)),
        (target, topics::Channel::Vars) => Some((target, Kind::Vars)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_taken_literally_by_the_loader() {
        let dir = tempfile::tempdir().unwrap();
        let variables = BTreeMap::from([
            ("A".to_string(), "plain".to_string()),
            ("B".to_string(), "has \"quotes\", a \\ and ${HOME} $X".to_string()),
            ("C".to_string(), "two\nlines".to_string()),
        ]);
        let file = dir.path().join("x.env");
        std::fs::write(&file, env_file_text(&variables)).unwrap();
        let mut problems = Vec::new();
        let read = crate::spec::dotenv::read(Some(&[file]), dir.path(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        for (k, v) in &variables {
            assert_eq!(read.vars.get(k), Some(v), "{k}");
        }
    }
}
