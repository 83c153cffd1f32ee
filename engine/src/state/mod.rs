//! Live cluster state: per configured cluster, one set of watches shared by every viewer,
//! reduced to slim in-memory tables ([`store::Stores`]) from which the views and the
//! diagnostics are computed without asking the API server.
//!
//! - [`model`]: the slim records and their conversions.
//! - [`store`]: the tables and their indexes.
//! - [`watch`]: the watch tasks (typed resources, and Calico's CRDs through the dynamic API as
//!   they appear and disappear).
//! - [`views`]: overview, nodes page (filter, sort, paginate) and node detail.
//!
//! Every applied change bumps the cluster's version ([`ClusterState::subscribe`]), which the
//! server turns into server-sent events so that browsers reload what they show.

pub mod model;
pub mod store;
pub mod views;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tokio::sync::watch as tokio_watch;

use crate::clusters::Clusters;
use crate::names::ClusterName;
use crate::time::{Timestamp, now};
use store::Stores;

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

/// One cluster's live state.
#[derive(Debug)]
pub struct ClusterState {
    pub name: ClusterName,
    stores: RwLock<Stores>,
    link: RwLock<Link>,
    version: tokio_watch::Sender<u64>,
    /// The diagnostics of a version, reused by every page until the state changes.
    findings: std::sync::Mutex<Option<CachedFindings>>,
}

#[derive(Debug)]
struct CachedFindings {
    version: u64,
    at: std::time::Instant,
    findings: Arc<Vec<grappe_views::Finding>>,
}

/// How long cached diagnostics stay valid without a change (time-based rules, such as a stale
/// condition, need a fresh look now and then).
const FINDINGS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl ClusterState {
    fn new(name: ClusterName) -> Self {
        Self {
            name,
            stores: RwLock::new(Stores::default()),
            link: RwLock::new(Link::default()),
            version: tokio_watch::channel(0).0,
            findings: std::sync::Mutex::new(None),
        }
    }

    /// The diagnostics of the current state, computed once per version (and at most every
    /// [`FINDINGS_FRESH_FOR`] while nothing changes).
    pub(crate) fn findings_for(
        &self,
        stores: &Stores,
        link: &Link,
    ) -> Arc<Vec<grappe_views::Finding>> {
        let version = self.version();
        let mut cache = self
            .findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.as_ref()
            && c.version == version
            && c.at.elapsed() < FINDINGS_FRESH_FOR
        {
            return Arc::clone(&c.findings);
        }
        let findings = Arc::new(crate::diagnostics::diagnose(
            stores,
            link,
            now().unix_seconds(),
        ));
        *cache = Some(CachedFindings {
            version,
            at: std::time::Instant::now(),
            findings: Arc::clone(&findings),
        });
        findings
    }

    /// Read access to the tables. Hold it briefly: the watches wait while it is held.
    pub fn read(&self) -> RwLockReadGuard<'_, Stores> {
        self.stores
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn link(&self) -> Link {
        self.link
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A receiver whose value changes whenever the state does.
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Applies a change to the tables and, when `f` says something changed, tells the
    /// subscribers.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Stores) -> bool) {
        let changed = {
            let mut stores = self
                .stores
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut stores)
        };
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    fn edit_link(&self, f: impl FnOnce(&mut Link)) {
        let mut link = self
            .link
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut link);
    }

    /// Records a watch failure of `resource` (the node watch stands for the API server).
    pub(crate) fn watch_failed(&self, resource: &str, error: String) {
        let mut changed = false;
        self.edit_link(|l| {
            if resource == "nodes" {
                changed = l.unreachable_since.is_none() || l.error.as_ref() != Some(&error);
                l.unreachable_since.get_or_insert_with(now);
                l.error = Some(error);
            } else {
                changed = l.resource_errors.get(resource) != Some(&error);
                l.resource_errors.insert(resource.to_owned(), error);
            }
        });
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Records that `resource`'s watch works (again).
    pub(crate) fn watch_ok(&self, resource: &str, listed: bool) {
        let mut changed = false;
        self.edit_link(|l| {
            if resource == "nodes" {
                changed = l.unreachable_since.is_some() || (listed && !l.synced);
                l.unreachable_since = None;
                l.error = None;
                l.synced |= listed;
            } else {
                changed = l.resource_errors.remove(resource).is_some();
            }
            if listed {
                l.listed.insert(resource.to_owned());
            }
        });
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }
}

/// The live state of every configured cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterStates {
    states: Arc<BTreeMap<ClusterName, Arc<ClusterState>>>,
}

impl ClusterStates {
    /// Starts the watches of every cluster (on the current tokio runtime). They run until the
    /// process ends, reconnecting with backoff.
    pub fn start(clusters: &Clusters) -> Self {
        let mut states = BTreeMap::new();
        for name in clusters.names() {
            let state = Arc::new(ClusterState::new(name.clone()));
            tokio::spawn(watch::run(clusters.clone(), Arc::clone(&state)));
            states.insert(name.clone(), state);
        }
        Self {
            states: Arc::new(states),
        }
    }

    pub fn get(&self, name: &ClusterName) -> Option<Arc<ClusterState>> {
        self.states.get(name).cloned()
    }
}
