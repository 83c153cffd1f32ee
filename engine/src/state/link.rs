//! Whether a cluster's watches reach its API server: what the pages' banners and the
//! diagnostics read. A leaf: the diagnostics import it without importing the state.

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// Whether the watches reach the API server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// The node list has been received at least once.
    pub synced: bool,
    /// Set while the node watch fails: the API server is unreachable (or refuses us) since then.
    pub unreachable_since: Option<Timestamp>,
    /// The latest error of the node watch, with its causes.
    pub error: Option<String>,
    /// Other resources whose watch currently fails, with the error.
    pub resource_errors: BTreeMap<String, String>,
    /// Resources whose first list has arrived (`nodes`, `daemonsets`, `kubeadm-config`, …).
    pub listed: std::collections::BTreeSet<String>,
}

impl Link {
    /// Whether the first list of every one of `resources` has arrived.
    pub fn has_listed(&self, resources: &[&str]) -> bool {
        resources.iter().all(|r| self.listed.contains(*r))
    }
}
