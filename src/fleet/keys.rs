//! Operator keys: Ed25519, private keys as PKCS#8 PEM and public keys as SPKI PEM (both
//! what `openssl pkey` reads), key ids, and the set of keys an agent trusts.
//!
//! A private key file is created with `O_EXCL` and mode 0600: `keygen` never overwrites a
//! key (a lost key locks the operator out of every board that trusts it) and never leaves
//! it readable by others, even for a moment.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest key file read (a PEM key is a few hundred bytes).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why a key could not be made, written or read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path} exists already; a key is never overwritten\n  hint: choose another path, or remove the old key yourself if it is no longer used")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an Ed25519 {what} key in PEM ({message})\n  hint: make keys with `shoal fleet keygen`")]
    Format {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{path} holds no public key (*.pem or *.pub)")]
    NoKeys { path: PathBuf },
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

/// A new private key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// The key id: the first 16 hex digits of SHA-256 of the 32 public key bytes. Short
/// enough to read in a report, long enough that two operators' keys never share one.
pub fn key_id(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    hex::encode(&hash[..8])
}

/// Create `path` (never overwriting) with `mode`, holding `text`.
fn create_new(path: &Path, text: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_path_buf(),
            },
            _ => KeyError::Write {
                path: path.to_path_buf(),
                source,
            },
        })?;
    file.write_all(text)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Write the private key as PKCS#8 PEM, mode 0600, failing if the file exists.
pub fn write_private(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    // PKCS#8 v1 (the seed only), the form `openssl genpkey -algorithm ed25519` writes:
    // OpenSSL 3.0 refuses the v2 form with the public key that ed25519-dalek writes by
    // default. The public key is derived from the seed when the key is read.
    let seed = ed25519_dalek::ed25519::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = seed.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "private",
        message: e.to_string(),
    })?;
    create_new(path, pem.as_bytes(), 0o600)
}

/// Write the public key as SPKI PEM, mode 0644, failing if the file exists.
pub fn write_public(path: &Path, key: &VerifyingKey) -> Result<(), KeyError> {
    let pem = key.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "public",
        message: e.to_string(),
    })?;
    create_new(path, pem.as_bytes(), 0o644)
}

fn read_small(path: &Path) -> Result<String, KeyError> {
    use std::io::Read;
    let read = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(read)?;
    Ok(text)
}

/// Read a PKCS#8 PEM private key.
pub fn load_private(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_small(path)?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "private",
        message: e.to_string(),
    })
}

/// Read an SPKI PEM public key.
pub fn load_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = read_small(path)?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "public",
        message: e.to_string(),
    })
}

/// The public keys an agent accepts signatures from, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustSet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustSet {
    /// Keys from files and folders: a file is one public key; a folder contributes every
    /// `*.pem` and `*.pub` file in it (not recursively). A named path that cannot be read,
    /// a file that is not a key, or a folder without keys is an error: an agent that
    /// silently trusted fewer keys than configured would refuse every deployment.
    pub fn load(paths: &[PathBuf]) -> Result<Self, KeyError> {
        let mut set = TrustSet::default();
        for path in paths {
            if path.is_dir() {
                let entries = std::fs::read_dir(path).map_err(|source| KeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mut files: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "pem" || x == "pub"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(KeyError::NoKeys { path: path.clone() });
                }
                for file in files {
                    set.add(load_public(&file)?);
                }
            } else {
                set.add(load_public(path)?);
            }
        }
        Ok(set)
    }

    pub fn add(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id(&key), key);
    }

    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_are_written_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let private = dir.path().join("op.key");
        let public = dir.path().join("op.pem");
        write_private(&private, &key).unwrap();
        write_public(&public, &key.verifying_key()).unwrap();
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_private(&private, &generate().unwrap()),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(load_private(&private).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(load_public(&public).unwrap(), key.verifying_key());
        assert!(std::fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(matches!(load_public(&private), Err(KeyError::Format { .. })));
    }

    /// The files are what other tools read: `openssl pkey` takes both (skipped without it).
    #[test]
    fn openssl_reads_both_keys() {
        if std::process::Command::new("openssl").arg("version").output().is_err() {
            eprintln!("skipped: no openssl");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let (private, public) = (dir.path().join("k"), dir.path().join("k.pem"));
        write_private(&private, &key).unwrap();
        write_public(&public, &key.verifying_key()).unwrap();
        let text = |args: &[&str]| {
            let out = std::process::Command::new("openssl").args(args).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let derived = text(&["pkey", "-in", private.to_str().unwrap(), "-pubout"]);
        assert_eq!(derived, std::fs::read_to_string(&public).unwrap());
        assert!(text(&["pkey", "-pubin", "-in", public.to_str().unwrap(), "-noout", "-text"]).contains("ED25519"));
    }

    #[test]
    fn a_trust_set_takes_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let keys = [generate().unwrap(), generate().unwrap()];
        let folder = dir.path().join("trusted");
        std::fs::create_dir(&folder).unwrap();
        write_public(&folder.join("a.pem"), &keys[0].verifying_key()).unwrap();
        std::fs::write(folder.join("README"), "not a key").unwrap();
        let single = dir.path().join("b.pub");
        write_public(&single, &keys[1].verifying_key()).unwrap();
        let set = TrustSet::load(&[folder.clone(), single]).unwrap();
        assert_eq!(set.len(), 2);
        let id = key_id(&keys[0].verifying_key());
        assert_eq!(id.len(), 16);
        assert_eq!(set.get(&id), Some(&keys[0].verifying_key()));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(TrustSet::load(&[empty]), Err(KeyError::NoKeys { .. })));
    }
}
