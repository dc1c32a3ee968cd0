//! Secrets at rest: OAuth tokens and client secrets are sealed (ring's ChaCha20-Poly1305)
//! before they reach the database, under a key the database does not hold. A sealed value is
//! bound to what it belongs to (its `context`, e.g. the upstream's name): moved to another
//! row, it does not open.
//!
//! The key is `database.secret_key` when set (any string: its SHA-256 is the key), else a
//! random key kept in a file beside the database, made on first run, readable by its owner
//! only.

use std::{io::Write, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// What a sealed value starts with: the format's version.
const PREFIX: &str = "sealed1:";

/// Seals and opens secrets under one key.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
    /// What keys for other purposes are derived from (see [`Sealer::derive`]).
    derivation: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// Why a key could not be had, or a value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} is not 32 bytes: restore it, or remove it and sign in again")]
    BadKeyFile(String),
    #[error(
        "a sealed secret does not open with this key (was database.secret_key or the key file changed?)"
    )]
    WrongKey,
}

impl Sealer {
    /// The sealer of `secret_key` (config), else of the key file beside `database`.
    pub fn for_database(secret_key: &str, database: &Path) -> Result<Self, SealError> {
        if !secret_key.is_empty() {
            return Ok(Self::from_secret(secret_key));
        }
        Self::from_key_file(&crate::registry::beside(database, ".key"))
    }

    /// The sealer of a configured secret of any length.
    pub fn from_secret(secret: &str) -> Self {
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        Self::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Self {
        let derivation = Sha256::new()
            .chain_update(b"mcps derivation\0")
            .chain_update(key)
            .finalize()
            .into();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key fits");
        Self {
            key: std::sync::Arc::new(LessSafeKey::new(key)),
            derivation,
        }
    }

    /// A key for `purpose` (e.g. signing the states the gateway gives clients), the same
    /// wherever the same key seals: on every replica of one registry. It reveals neither
    /// the sealing key nor the keys of other purposes.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.derivation)
            .chain_update(purpose.as_bytes())
            .finalize()
            .into()
    }

    /// The key in `path`, made (random, mode 0600) when the file does not exist.
    fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let shown = path.display().to_string();
        let failed = |source| SealError::KeyFile {
            path: shown.clone(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| SealError::BadKeyFile(shown.clone()))?;
                Ok(Self::from_key(key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|error| failed(std::io::Error::other(error)))?;
                let mut file = create_private(path).map_err(failed)?;
                file.write_all(&key).map_err(failed)?;
                file.sync_all().map_err(failed)?;
                Ok(Self::from_key(key))
            }
            Err(error) => Err(failed(error)),
        }
    }

    /// `secret` sealed for `context`.
    pub fn seal(&self, context: &str, secret: &[u8]) -> String {
        // A random 96-bit nonce per value: with the handful of values one key seals, a
        // repeat is out of reach.
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the system's random source works");
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .expect("sealing in memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// What [`Sealer::seal`] sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|text| STANDARD_NO_PAD.decode(text).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or(SealError::WrongKey)?;
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SealError::WrongKey)?;
        let opened = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| SealError::WrongKey)?;
        Ok(opened.to_vec())
    }
}

/// A new file only its owner can read; an existing one is an error (two processes racing to
/// make the key must not end with two keys).
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let sealer = Sealer::from_secret("one");
        let sealed = sealer.seal("linear", b"token-123");
        assert!(!sealed.contains("token-123"));
        assert_eq!(sealer.open("linear", &sealed).unwrap(), b"token-123");
        assert!(sealer.open("github", &sealed).is_err());
        assert!(Sealer::from_secret("two").open("linear", &sealed).is_err());
        assert!(sealer.open("linear", "garbage").is_err());
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("data/mcps.db");
        let first = Sealer::for_database("", &database).unwrap();
        let sealed = first.seal("x", b"secret");
        let again = Sealer::for_database("", &database).unwrap();
        assert_eq!(again.open("x", &sealed).unwrap(), b"secret");
        let key_file = dir.path().join("data/mcps.db.key");
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&key_file, b"short").unwrap();
        assert!(matches!(
            Sealer::for_database("", &database),
            Err(SealError::BadKeyFile(_))
        ));
    }
}
