//! Signed documents: what travels on the desired and vars topics.
//!
//! On the wire a document is an envelope, JSON
//! `{"payload": "<base64 of the payload bytes>", "key": "<key id>", "signature": "<base64>"}`,
//! whose Ed25519 signature covers the payload bytes exactly. Signing bytes rather than a
//! re-serialised JSON value means nobody has to agree on a canonical JSON form: the agent
//! verifies the bytes it got and only then parses them.
//!
//! An agent opens a document with [`open`]: envelope, key, signature, payload, kind,
//! target, in that order, each failure a [`Refusal`]. Revisions are checked against what
//! the agent accepted before on the same topic with [`check_revision`], so a broker (or
//! anyone who can publish) cannot replay an older deployment.

use std::collections::BTreeMap;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::keys::{key_id, TrustSet};
use super::topics::Target;

/// The payload schema this shoal writes and reads.
pub const SCHEMA: u32 = 1;

/// The largest document accepted (envelope bytes); a deployment is a few compose files.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The signed envelope as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Base64 (standard alphabet, padded) of the payload bytes.
    pub payload: String,
    /// Id of the key that signed ([`key_id`]).
    pub key: String,
    /// Base64 of the 64-byte Ed25519 signature over the payload bytes.
    pub signature: String,
}

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deployment,
    Vars,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Deployment => "deployment",
            Kind::Vars => "vars",
        })
    }
}

/// One compose file of a deployment, applied in list order like `-f a -f b`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocFile {
    /// A plain file name (no `/`, not `.` or `..`).
    pub name: String,
    pub text: String,
}

/// The signed content. One struct for both kinds (fields a kind does not use must be
/// absent; [`Payload::check`] says so); unknown fields are refused, so a newer operator's
/// field is never silently ignored by an older agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub kind: Kind,
    pub schema: u32,
    /// Higher than every revision accepted before on the same topic.
    pub revision: u64,
    /// The device or group this is for; must match the topic it arrives on.
    pub target: Target,
    /// RFC 3339.
    pub created: String,
    /// Who signed, free text (`user@host`).
    pub signer: String,
    /// Deployment: the project name to run it under (default: the agent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Deployment: the compose files, base first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DocFile>,
    /// Deployment: image reference as written in the files -> `sha256:<hex>` registry
    /// (manifest) digest the agent runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// Deployment: how long every container must run (or have completed) without a
    /// restart before the revision counts as healthy, e.g. `30s` (default: the agent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_window: Option<String>,
    /// Interpolation variables (a deployment's defaults, or a vars document's values).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Why an agent did not accept a document. The texts go into `reported.refused` and the
/// agent's warning, so they say what was wrong in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "unsigned: the message is a bare payload, not a signed envelope\n  hint: publish with `shoal fleet deploy`"
    )]
    Unsigned,
    #[error("not a signed document: {0}")]
    Malformed(String),
    #[error("document of {0} bytes is larger than the {MAX_DOCUMENT_BYTES} bytes accepted")]
    TooLarge(usize),
    #[error("signed by unknown key {key}\n  hint: add the operator's public key to the agent's `trusted_keys`")]
    UnknownKey { key: String },
    #[error("bad signature (key {key}): the payload is not what the key signed")]
    BadSignature { key: String },
    #[error("invalid payload: {0}")]
    Payload(String),
    #[error("schema {0} is not supported by this agent (it reads schema {SCHEMA})")]
    Schema(u32),
    #[error("a {found} document on a {expected} topic")]
    WrongKind { expected: Kind, found: Kind },
    #[error("wrong target: the document is for {document}, but came on the topic of {topic}")]
    WrongTarget { topic: Target, document: Target },
    #[error("replayed revision {revision}: revision {highest} was accepted on this topic already")]
    Replay { revision: u64, highest: u64 },
    #[error("revision {revision} was accepted on this topic already with different content")]
    Conflict { revision: u64 },
}

impl Refusal {
    /// The revision the refused document claimed, where it was readable.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Refusal::Replay { revision, .. } | Refusal::Conflict { revision } => Some(*revision),
            _ => None,
        }
    }
}

/// A document whose signature checked out, with its payload parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub envelope: Envelope,
    pub payload: Payload,
    /// SHA-256 hex of the payload bytes (what a retained redelivery is recognised by).
    pub hash: String,
}

impl Payload {
    /// The bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings and maps cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The rules the types cannot say: fields per kind, plain file names, pinned digests.
    pub fn check(&self) -> Result<(), Refusal> {
        let bad = |m: String| Err(Refusal::Payload(m));
        if self.schema != SCHEMA {
            return Err(Refusal::Schema(self.schema));
        }
        if humantime::parse_rfc3339_weak(&self.created).is_err() {
            return bad(format!("`created` is not an RFC 3339 time: `{}`", self.created));
        }
        match self.kind {
            Kind::Vars => {
                if !self.files.is_empty()
                    || !self.images.is_empty()
                    || self.project.is_some()
                    || self.health_window.is_some()
                {
                    return bad("a vars document holds only `variables`".into());
                }
            }
            Kind::Deployment => {
                if self.files.is_empty() {
                    return bad("a deployment has at least one file in `files`".into());
                }
                let mut seen = std::collections::BTreeSet::new();
                for file in &self.files {
                    let plain = !file.name.is_empty()
                        && !file.name.contains(['/', '\\', '\0'])
                        && file.name != "."
                        && file.name != ".."
                        && !file.name.starts_with('.');
                    if !plain {
                        return bad(format!("file name `{}` is not a plain file name", file.name));
                    }
                    if !seen.insert(file.name.as_str()) {
                        return bad(format!("file `{}` appears twice", file.name));
                    }
                }
                for (reference, digest) in &self.images {
                    if digest.parse::<crate::spec::ImageDigest>().is_err() {
                        return bad(format!(
                            "image `{reference}` is pinned to `{digest}`, not `sha256:<64 hex>`"
                        ));
                    }
                }
                if let Some(window) = &self.health_window {
                    if humantime::parse_duration(window).is_err() {
                        return bad(format!("health_window `{window}` is not a duration like `30s`"));
                    }
                }
                if let Some(project) = &self.project {
                    if crate::spec::names::check_name(project).is_err() {
                        return bad(format!("project `{project}` is not a valid project name"));
                    }
                }
            }
        }
        for name in self.variables.keys() {
            let ok = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return bad(format!("variable name `{name}` is not [A-Za-z_][A-Za-z0-9_]*"));
            }
        }
        Ok(())
    }

    /// The health window, if the deployment gives one.
    pub fn health_window(&self) -> Option<std::time::Duration> {
        self.health_window
            .as_deref()
            .and_then(|w| humantime::parse_duration(w).ok())
    }
}

impl Envelope {
    /// Sign `payload` as it serialises now.
    pub fn sign(payload: &Payload, key: &SigningKey) -> Self {
        Self::sign_bytes(&payload.to_bytes(), key)
    }

    /// Sign exactly these bytes.
    pub fn sign_bytes(bytes: &[u8], key: &SigningKey) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Envelope {
            payload: b64.encode(bytes),
            key: key_id(&key.verifying_key()),
            signature: b64.encode(key.sign(bytes).to_bytes()),
        }
    }

    /// The JSON published on the topic.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The payload as written, its signature not checked: only for reading what a kept
    /// document names (the journal's images for `shoal images rm`), never to run it.
    pub fn unverified_payload(&self) -> Option<Payload> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.payload).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Open a message that arrived on a `expected` topic of `target`: parse the envelope,
/// find the key, check the signature over the payload bytes, then parse and check the
/// payload and that it is meant for this topic. The payload is never parsed before its
/// signature is checked.
pub fn open(message: &[u8], target: &Target, expected: Kind, trust: &TrustSet) -> Result<Verified, Refusal> {
    if message.len() > MAX_DOCUMENT_BYTES {
        return Err(Refusal::TooLarge(message.len()));
    }
    let envelope: Envelope = match serde_json::from_slice(message) {
        Ok(envelope) => envelope,
        Err(e) => {
            // A payload published without an envelope: say "unsigned", not "malformed".
            let bare = serde_json::from_slice::<serde_json::Value>(message)
                .ok()
                .is_some_and(|v| v.get("kind").is_some() || v.get("revision").is_some());
            return Err(if bare {
                Refusal::Unsigned
            } else {
                Refusal::Malformed(e.to_string())
            });
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64
        .decode(&envelope.payload)
        .map_err(|e| Refusal::Malformed(format!("payload is not base64: {e}")))?;
    let Some(key) = trust.get(&envelope.key) else {
        return Err(Refusal::UnknownKey {
            key: envelope.key.clone(),
        });
    };
    let signature = b64
        .decode(&envelope.signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or_else(|| Refusal::BadSignature {
            key: envelope.key.clone(),
        })?;
    key.verify_strict(&bytes, &signature)
        .map_err(|_| Refusal::BadSignature {
            key: envelope.key.clone(),
        })?;
    let payload: Payload = serde_json::from_slice(&bytes).map_err(|e| Refusal::Payload(e.to_string()))?;
    payload.check()?;
    if payload.kind != expected {
        return Err(Refusal::WrongKind {
            expected,
            found: payload.kind,
        });
    }
    if &payload.target != target {
        return Err(Refusal::WrongTarget {
            topic: target.clone(),
            document: payload.target.clone(),
        });
    }
    Ok(Verified {
        hash: sha256_hex(&bytes),
        envelope,
        payload,
    })
}

/// The highest revision accepted on one topic, and its payload's hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub revision: u64,
    pub hash: String,
}

/// Whether a verified document is new on its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A higher revision than any accepted (or the first).
    New,
    /// The document accepted before, delivered again (retained, after a reconnect).
    Same,
}

/// Check `doc` against the highest revision accepted on its topic.
pub fn check_revision(doc: &Verified, accepted: Option<&Accepted>) -> Result<Freshness, Refusal> {
    let revision = doc.payload.revision;
    match accepted {
        None => Ok(Freshness::New),
        Some(a) if revision > a.revision => Ok(Freshness::New),
        Some(a) if revision == a.revision && doc.hash == a.hash => Ok(Freshness::Same),
        Some(a) if revision == a.revision => Err(Refusal::Conflict { revision }),
        Some(a) => Err(Refusal::Replay {
            revision,
            highest: a.revision,
        }),
    }
}

/// The current time in RFC 3339 (seconds), for `created` and reports.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::keys::generate;

    fn deployment(revision: u64, target: &str) -> Payload {
        Payload {
            kind: Kind::Deployment,
            schema: SCHEMA,
            revision,
            target: target.parse().unwrap(),
            created: "2026-12-02T06:00:00Z".into(),
            signer: "op@test".into(),
            project: None,
            files: vec![DocFile {
                name: "compose.yaml".into(),
                text: "services: {}\n".into(),
            }],
            images: BTreeMap::new(),
            health_window: None,
            variables: BTreeMap::from([("SITE".into(), "north".into())]),
        }
    }

    fn trust(key: &SigningKey) -> TrustSet {
        let mut set = TrustSet::default();
        set.add(key.verifying_key());
        set
    }

    const G: Kind = Kind::Deployment;

    #[test]
    fn a_signed_document_opens_and_round_trips() {
        let key = generate().unwrap();
        let payload = deployment(5, "group:line-1");
        let wire = Envelope::sign(&payload, &key).to_json();
        let target: Target = "group:line-1".parse().unwrap();
        let doc = open(&wire, &target, G, &trust(&key)).unwrap();
        assert_eq!(doc.payload, payload);
        assert_eq!(doc.hash, sha256_hex(&payload.to_bytes()));
    }

    #[test]
    fn tampered_unknown_unsigned_and_misdirected_documents_are_refused() {
        let key = generate().unwrap();
        let other = generate().unwrap();
        let target: Target = "group:line-1".parse().unwrap();
        let payload = deployment(5, "group:line-1");
        let mut envelope = Envelope::sign(&payload, &key);
        // Tampered: the payload changed after signing.
        let mut changed = payload.clone();
        changed.variables.insert("SITE".into(), "south".into());
        envelope.payload = base64::engine::general_purpose::STANDARD.encode(changed.to_bytes());
        assert!(matches!(
            open(&envelope.to_json(), &target, G, &trust(&key)),
            Err(Refusal::BadSignature { .. })
        ));
        // Unknown key.
        let foreign = Envelope::sign(&payload, &other).to_json();
        assert_eq!(
            open(&foreign, &target, G, &trust(&key)),
            Err(Refusal::UnknownKey {
                key: key_id(&other.verifying_key())
            })
        );
        // Unsigned: the bare payload.
        assert_eq!(
            open(&payload.to_bytes(), &target, G, &trust(&key)),
            Err(Refusal::Unsigned)
        );
        assert!(matches!(
            open(b"hello", &target, G, &trust(&key)),
            Err(Refusal::Malformed(_))
        ));
        // Wrong target: a group-A document republished on group B's topic.
        let b: Target = "group:line-2".parse().unwrap();
        let wire = Envelope::sign(&payload, &key).to_json();
        assert!(matches!(
            open(&wire, &b, G, &trust(&key)),
            Err(Refusal::WrongTarget { .. })
        ));
        // A deployment on a vars topic.
        assert!(matches!(
            open(&wire, &target, Kind::Vars, &trust(&key)),
            Err(Refusal::WrongKind { .. })
        ));
    }

    #[test]
    fn unknown_fields_and_bad_names_are_refused_after_the_signature() {
        let key = generate().unwrap();
        let target: Target = "device:d1".parse().unwrap();
        let mut value = serde_json::to_value(deployment(1, "device:d1")).unwrap();
        value["run_as_root"] = serde_json::json!(true);
        let wire = Envelope::sign_bytes(&serde_json::to_vec(&value).unwrap(), &key).to_json();
        match open(&wire, &target, G, &trust(&key)) {
            Err(Refusal::Payload(m)) => assert!(m.contains("run_as_root"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut escaping = deployment(1, "device:d1");
        escaping.files[0].name = "../etc/passwd".into();
        let wire = Envelope::sign(&escaping, &key).to_json();
        assert!(matches!(
            open(&wire, &target, G, &trust(&key)),
            Err(Refusal::Payload(_))
        ));
        let mut unpinned = deployment(1, "device:d1");
        unpinned.images.insert("localhost:5000/app:1".into(), "latest".into());
        let wire = Envelope::sign(&unpinned, &key).to_json();
        assert!(matches!(
            open(&wire, &target, G, &trust(&key)),
            Err(Refusal::Payload(_))
        ));
    }

    #[test]
    fn revisions_refuse_replays_and_conflicts() {
        let key = generate().unwrap();
        let target: Target = "group:g".parse().unwrap();
        let open_rev = |p: &Payload| open(&Envelope::sign(p, &key).to_json(), &target, G, &trust(&key)).unwrap();
        let v5 = open_rev(&deployment(5, "group:g"));
        let accepted = Accepted {
            revision: 5,
            hash: v5.hash.clone(),
        };
        assert_eq!(check_revision(&v5, None), Ok(Freshness::New));
        assert_eq!(check_revision(&v5, Some(&accepted)), Ok(Freshness::Same));
        let v6 = open_rev(&deployment(6, "group:g"));
        assert_eq!(check_revision(&v6, Some(&accepted)), Ok(Freshness::New));
        let v4 = open_rev(&deployment(4, "group:g"));
        assert_eq!(
            check_revision(&v4, Some(&accepted)),
            Err(Refusal::Replay {
                revision: 4,
                highest: 5
            })
        );
        let mut other5 = deployment(5, "group:g");
        other5.signer = "someone else".into();
        let other5 = open_rev(&other5);
        assert_eq!(
            check_revision(&other5, Some(&accepted)),
            Err(Refusal::Conflict { revision: 5 })
        );
    }
}
