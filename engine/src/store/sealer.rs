//! Sealing of Secret snapshots: a run snapshots each object it will change, Secrets included,
//! so that its rollback can restore them. A Secret's snapshot is stored encrypted (AES-256-GCM)
//! with the server's key file, `<database>.key` (32 random bytes, created 0600 beside the
//! database at first start), bound to its run and row: a copy of the database alone, or a
//! snapshot moved to another row, reveals nothing. Other objects are stored as they are.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;

/// What a sealed snapshot starts with in the `before` column (JSON never does).
const PREFIX: &str = "sealed:v1:";

/// The server's snapshot key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or create the snapshot key {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the snapshot key {path} is not 32 bytes")]
    Length { path: PathBuf },
    #[error("the snapshot key {path} can be read by other users (mode {mode:o}); chmod 600 it")]
    Exposed { path: PathBuf, mode: u32 },
}

/// Where the key of the database at `database` lives.
pub fn key_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

impl Sealer {
    /// Loads the key file, creating it (0600, 32 random bytes) when missing.
    ///
    /// # Errors
    /// [`KeyError`] when it cannot be read or created, has the wrong length, or other users may
    /// read it.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let key = std::fs::read(path).map_err(io)?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| KeyError::Length {
            path: path.to_owned(),
        })?;
        Ok(Self { cipher })
    }

    /// `text` sealed for row `seq` of run `run`.
    pub fn seal(&self, run: i64, seq: i64, text: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(run, seq);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // AES-GCM fails only on inputs of 64 GiB and more.
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", B64.encode(bytes))
    }

    /// The text of a stored snapshot: opened when sealed, as it is otherwise. `None` when it is
    /// sealed and cannot be opened (another key, or altered).
    pub fn open(&self, run: i64, seq: i64, stored: &str) -> Option<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Some(stored.to_owned());
        };
        let bytes = B64.decode(encoded).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let aad = aad(run, seq);
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether a stored snapshot is still sealed (its key was not this server's).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

fn aad(run: i64, seq: i64) -> String {
    format!("grappe run {run} object {seq}")
}

/// Whether a snapshot (an object's JSON) is a Secret's.
pub fn is_secret(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Kind<'_>>(text)
        .ok()
        .and_then(|k| k.kind)
        .is_some_and(|k| k == "Secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_snapshot_opens_only_with_its_key_and_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grappe.db.key");
        let sealer = Sealer::load_or_create(&path).expect("key");
        let text = r#"{"kind":"Secret","data":{"token":"c2VjcmV0"}}"#;
        assert!(is_secret(text));
        assert!(!is_secret(r#"{"kind":"ConfigMap","data":{}}"#));
        let sealed = sealer.seal(7, 3, text);
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("c2VjcmV0"));
        assert_eq!(sealer.open(7, 3, &sealed).as_deref(), Some(text));
        assert_eq!(sealer.open(7, 4, &sealed), None, "bound to its row");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sealer.open(7, 3, &String::from_utf8(altered).expect("utf8")),
            None
        );
        // The same key file next start; another key opens nothing.
        let again = Sealer::load_or_create(&path).expect("key");
        assert_eq!(again.open(7, 3, &sealed).as_deref(), Some(text));
        let other = Sealer::load_or_create(&dir.path().join("other.key")).expect("key");
        assert_eq!(other.open(7, 3, &sealed), None);
        // Plain snapshots pass through.
        assert_eq!(sealer.open(1, 1, "{}").as_deref(), Some("{}"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(
            Sealer::load_or_create(&path),
            Err(KeyError::Exposed { .. })
        ));
    }
}
