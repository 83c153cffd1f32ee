//! Passwords: a type whose `Debug` never shows it, the strength rule, and argon2id hashing and
//! verification off the async threads. A leaf: authentication and accounts both use it.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::Rng;

/// A password in memory. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The minimum length of a new password.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest password accepted, at login too: a longer one is refused without being hashed
/// (argon2 costs the same for any length, but the bytes still have to be read and held).
pub const MAX_PASSWORD_LEN: usize = 1024;

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// A random 20-character password (letters and digits, ~119 bits).
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::rng();
        Self(
            (0..20)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// # Errors
    /// [`PasswordError::TooShort`] under [`MIN_PASSWORD_LEN`] characters.
    pub fn check_strength(&self) -> Result<(), PasswordError> {
        if self.0.chars().count() < MIN_PASSWORD_LEN {
            return Err(PasswordError::TooShort(MIN_PASSWORD_LEN));
        }
        if self.too_long() {
            return Err(PasswordError::TooLong(MAX_PASSWORD_LEN));
        }
        Ok(())
    }

    /// Longer than [`MAX_PASSWORD_LEN`] bytes.
    pub fn too_long(&self) -> bool {
        self.0.len() > MAX_PASSWORD_LEN
    }
}

/// Password hashing errors.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {0} bytes long")]
    TooLong(usize),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes with argon2id (default parameters: 19 MiB, 2 passes), off the async threads.
///
/// # Errors
/// [`PasswordError::Hash`] when argon2 fails (it does not with default parameters).
pub async fn hash_password(password: &Password) -> Result<String, PasswordError> {
    let secret = password.0.clone();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(secret.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// Whether `password` matches the argon2id hash `phc`, off the async threads.
///
/// # Errors
/// [`PasswordError::Join`] when the hashing task fails.
pub(crate) async fn verify_password(password: &Password, phc: &str) -> Result<bool, PasswordError> {
    let secret = password.0.clone();
    let phc = phc.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(secret.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await?)
}
