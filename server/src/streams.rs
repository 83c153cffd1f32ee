//! The live event streams each session holds open, counted so that one session cannot hold
//! more than [`MAX_PER_SESSION`]. A leaf: the state holds the count, the live handlers take
//! and give back slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open streams a session may hold (a browser's tabs: two each).
pub const MAX_PER_SESSION: usize = 16;

/// Open streams per session (by the session's stored key).
#[derive(Debug, Clone, Default)]
pub struct Streams(Arc<Mutex<HashMap<String, usize>>>);

/// One of a session's open streams; the count goes down when it is dropped.
pub struct Slot {
    streams: Streams,
    /// The session's stored key.
    pub key: String,
}

impl Streams {
    /// A slot for one more stream of `key`'s session, if it holds fewer than the maximum.
    pub fn take(&self, key: &str) -> Option<Slot> {
        let mut open = self.0.lock().ok()?;
        let n = open.entry(key.to_owned()).or_default();
        if *n >= MAX_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(Slot {
            streams: self.clone(),
            key: key.to_owned(),
        })
    }

    /// How many streams `key`'s session holds.
    pub fn open(&self, key: &str) -> usize {
        self.0
            .lock()
            .map(|m| m.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.0.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}
