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

    use crate::fleet::connect::Connection;
    use crate::fleet::document::{Envelope, Kind, Payload, SCHEMA};
    use crate::fleet::keys::{generate, TrustSet};

    fn doc(kind: Kind, target: &str, revision: u64, vars: &[(&str, &str)]) -> Verified {
        let key = generate().unwrap();
        let mut trust = TrustSet::default();
        trust.add(key.verifying_key());
        let payload = Payload {
            kind,
            schema: SCHEMA,
            revision,
            target: target.parse().unwrap(),
            created: "2026-12-02T06:00:00Z".into(),
            signer: "t".into(),
            project: None,
            files: match kind {
                Kind::Deployment => vec![crate::fleet::document::DocFile {
                    name: "compose.yaml".into(),
                    text: String::new(),
                }],
                Kind::Vars => Vec::new(),
            },
            images: BTreeMap::new(),
            health_window: None,
            variables: vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        };
        let wire = Envelope::sign(&payload, &key).to_json();
        crate::fleet::document::open(&wire, &payload.target, kind, &trust).unwrap()
    }

    #[test]
    fn the_device_wins_over_its_groups_and_the_agent_sets_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(
            "d1",
            &["g1", "g2"],
            dir.path(),
            TrustSet::default(),
            Connection::plain("mqtt://127.0.0.1").unwrap(),
        )
        .unwrap();
        let mut inputs = Inputs::default();
        assert!(effective(&settings, &inputs).is_none());
        let g2 = doc(
            Kind::Deployment,
            "group:g2",
            7,
            &[("A", "deploy"), ("B", "deploy"), ("C", "deploy")],
        );
        inputs.desired.insert(topics::group_desired("g2"), g2);
        let state = effective(&settings, &inputs).unwrap();
        assert_eq!((state.source.to_string(), state.revision), ("group:g2".into(), 7));
        // The first group in the agent's order wins over a later one.
        inputs
            .desired
            .insert(topics::group_desired("g1"), doc(Kind::Deployment, "group:g1", 3, &[]));
        assert_eq!(effective(&settings, &inputs).unwrap().source.to_string(), "group:g1");
        inputs.desired.insert(
            topics::device_desired("d1"),
            doc(
                Kind::Deployment,
                "device:d1",
                1,
                &[("A", "deploy"), ("B", "deploy"), ("C", "deploy")],
            ),
        );
        let before = effective(&settings, &inputs).unwrap();
        assert_eq!(before.source.to_string(), "device:d1");
        // Variables: device vars over group vars (first group first) over the deployment's;
        // DEVICE_ID and DEVICE_GROUPS over everything.
        inputs.vars.insert(
            topics::group_vars("g2"),
            doc(Kind::Vars, "group:g2", 1, &[("A", "g2"), ("B", "g2")]),
        );
        inputs
            .vars
            .insert(topics::group_vars("g1"), doc(Kind::Vars, "group:g1", 1, &[("A", "g1")]));
        inputs.vars.insert(
            topics::device_vars("d1"),
            doc(Kind::Vars, "device:d1", 1, &[("DEVICE_ID", "forged"), ("Z", "dev")]),
        );
        let state = effective(&settings, &inputs).unwrap();
        let v = |k: &str| state.variables.get(k).map(String::as_str);
        assert_eq!(
            (v("A"), v("B"), v("C"), v("Z")),
            (Some("g1"), Some("g2"), Some("deploy"), Some("dev"))
        );
        assert_eq!((v("DEVICE_ID"), v("DEVICE_GROUPS")), (Some("d1"), Some("g1,g2")));
        // A change of variables alone is a new state of the same revision.
        assert_eq!(state.revision, before.revision);
        assert_ne!(state.id, before.id);
        assert!(state.id.starts_with("device:d1@1+vars:"));
        assert_eq!(state.vars.len(), 3);
    }

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
