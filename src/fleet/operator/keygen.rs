//! `shoal fleet keygen [--out DIR]`: a new operator key pair. The private key signs
//! documents (keep it off the boards); the public key goes into every agent's
//! `trusted_keys`. Nothing is ever overwritten: a lost private key would lock the operator
//! out of every board that trusts it, so an existing file stops the command.

use std::path::{Path, PathBuf};

use super::OperatorError;
use crate::fleet::keys;

/// The private key's file name in the key folder.
pub const PRIVATE_NAME: &str = "fleet.key";
/// The public key's file name in the key folder.
pub const PUBLIC_NAME: &str = "fleet.pub";

/// What keygen wrote.
#[derive(Debug)]
pub struct KeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
    pub id: String,
}

/// Write a new key pair into `dir` (created if missing, mode 0700 when new).
pub fn keygen(dir: &Path) -> Result<KeyPair, OperatorError> {
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| keys::KeyError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let private = dir.join(PRIVATE_NAME);
    let public = dir.join(PUBLIC_NAME);
    // Both checked first, so a half-written pair (a new private key beside an old public
    // key) never happens.
    for path in [&private, &public] {
        if path.exists() {
            return Err(keys::KeyError::Exists { path: path.clone() }.into());
        }
    }
    let key = keys::generate()?;
    keys::write_private(&private, &key)?;
    keys::write_public(&public, &key.verifying_key())?;
    Ok(KeyPair {
        private,
        public,
        id: keys::key_id(&key.verifying_key()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pair_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("k");
        let pair = keygen(&keys_dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pair.private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let private = keys::load_private(&pair.private).unwrap();
        let public = keys::load_public(&pair.public).unwrap();
        assert_eq!(private.verifying_key(), public);
        assert_eq!(pair.id, keys::key_id(&public));
        let before = std::fs::read(&pair.private).unwrap();
        let again = keygen(&keys_dir).unwrap_err();
        assert!(again.to_string().contains("never overwritten"), "{again}");
        assert_eq!(std::fs::read(&pair.private).unwrap(), before);
    }
}
