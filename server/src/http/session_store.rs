//! The session store keeps a digest of each session id, never the id itself: whoever reads the
//! database (a backup, a copy left on a disk) finds no cookie that would sign in. The browser's
//! cookie holds the id; every look-up hashes it first (SHA-256, first 128 bits: the ids are 128
//! random bits, so the digest cannot be turned back into one).

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// The key a session is stored under (also what `user_sessions` links to a user).
pub fn stored_key(id: Id) -> Id {
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

/// A [`SessionStore`] that stores records under [`stored_key`] of their id.
#[derive(Debug, Clone)]
pub struct DigestStore<S> {
    inner: S,
}

impl<S> DigestStore<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

fn under_key(record: &Record) -> Record {
    let mut stored = record.clone();
    stored.id = stored_key(record.id);
    stored
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for DigestStore<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh random id whose key is taken is drawn again (2^-128: never, in practice).
        while self.inner.load(&stored_key(record.id)).await?.is_some() {
            record.id = Id::default();
        }
        self.inner.save(&under_key(record)).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&under_key(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let loaded = self.inner.load(&stored_key(*id)).await?;
        // The session goes on with the id its cookie holds (saving it hashes it again).
        Ok(loaded.map(|mut record| {
            record.id = *id;
            record
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(&stored_key(*id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_and_not_the_id() {
        let id = Id::default();
        assert_eq!(stored_key(id), stored_key(id));
        assert_ne!(stored_key(id), id);
        assert_ne!(stored_key(id), stored_key(Id::default()));
    }
}
