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

mod crds;
mod doctor;
mod feed;
pub mod link;
pub mod model;
pub mod store;
pub mod views;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tokio::sync::watch as tokio_watch;

use crate::clusters::Clusters;
use crate::names::ClusterName;
use crate::time::now;
pub use link::Link;
use store::Stores;

/// One cluster's live state.
#[derive(Debug)]
pub struct ClusterState {
    pub name: ClusterName,
    stores: RwLock<Stores>,
    link: RwLock<Link>,
    /// Bumped by every applied change.
    version: tokio_watch::Sender<u64>,
    /// Bumped once the diagnostics reflect the latest changes (what browsers follow).
    published: tokio_watch::Sender<u64>,
    /// The latest diagnostics, shared by every page; [`refresh_findings`] keeps them current.
    findings: std::sync::Mutex<Option<CachedFindings>>,
    /// The IPAM check of the state at a version (a page load on an unchanged state reuses it).
    ipam: std::sync::Mutex<Option<(u64, Arc<grappe_views::ipam::IpamView>)>>,
}

#[derive(Debug)]
struct CachedFindings {
    version: u64,
    at: std::time::Instant,
    findings: Arc<Vec<grappe_views::Finding>>,
}

/// How often the refresher diagnoses a state that does not change (time-based rules, such as a
/// stale condition, need a fresh look now and then).
const FINDINGS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Changes arriving within this time after a first one are diagnosed together.
const FINDINGS_COALESCE: std::time::Duration = std::time::Duration::from_millis(250);

/// Pages take the latest diagnostics even when changes arrived since, up to this age: the
/// background refresher publishes the newer ones, and browsers reload then.
const FINDINGS_REUSED_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// Past this age, unchanged diagnostics are computed by the page that needs them: the
/// refresher (every [`FINDINGS_FRESH_FOR`]) is late or not running.
const FINDINGS_OVERDUE: std::time::Duration = std::time::Duration::from_secs(15);

impl ClusterState {
    fn new(name: ClusterName) -> Self {
        Self {
            name,
            stores: RwLock::new(Stores::default()),
            link: RwLock::new(Link::default()),
            version: tokio_watch::channel(0).0,
            published: tokio_watch::channel(0).0,
            findings: std::sync::Mutex::new(None),
            ipam: std::sync::Mutex::new(None),
        }
    }

    /// The diagnostics of the current state. Under constant change (pods turning Ready by the
    /// thousand) they come from the background refresher, at most [`FINDINGS_REUSED_FOR`] old,
    /// instead of being computed again by every page; while nothing changes, the refresher
    /// renews them every [`FINDINGS_FRESH_FOR`] and a page computes them only when that renewal
    /// is overdue ([`FINDINGS_OVERDUE`]). No lock is held while diagnosing: a page never waits
    /// for another's (or the refresher's) computation.
    pub(crate) fn findings_for(
        &self,
        stores: &Stores,
        link: &Link,
    ) -> Arc<Vec<grappe_views::Finding>> {
        let version = self.version();
        if let Some(c) = self.findings_cache().as_ref() {
            let age = c.at.elapsed();
            if (c.version == version && age < FINDINGS_OVERDUE) || age < FINDINGS_REUSED_FOR {
                return Arc::clone(&c.findings);
            }
        }
        let findings = diagnose(stores, link);
        store_findings(&mut self.findings_cache(), version, Arc::clone(&findings));
        findings
    }

    /// The IPAM check of the current state, computed once per version.
    pub(crate) fn ipam_check(&self) -> Arc<grappe_views::ipam::IpamView> {
        let version = self.version();
        let mut cache = self
            .ipam
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((v, view)) = cache.as_ref()
            && *v == version
        {
            return Arc::clone(view);
        }
        let view = Arc::new(crate::ipam::check(&self.read()));
        *cache = Some((version, Arc::clone(&view)));
        view
    }

    fn findings_cache(&self) -> std::sync::MutexGuard<'_, Option<CachedFindings>> {
        self.findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// A receiver whose value changes whenever the state does, once the diagnostics of the
    /// change are ready (so a page loaded then shows both).
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// A receiver whose value changes with every applied change, at once (for the engine's
    /// own waits; pages follow [`Self::subscribe`]).
    pub fn changes(&self) -> tokio_watch::Receiver<u64> {
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
            tokio::spawn(refresh_findings(Arc::clone(&state)));
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

/// Keeps a cluster's diagnostics current in the background: after each burst of changes
/// (coalesced over [`FINDINGS_COALESCE`]) and every [`FINDINGS_FRESH_FOR`], it diagnoses the
/// state once, then publishes, so that browsers reload when both the state and its diagnostics
/// are new. One computation per burst, however many browsers watch.
async fn refresh_findings(state: Arc<ClusterState>) {
    let mut changes = state.version.subscribe();
    let mut published_version = None;
    loop {
        match tokio::time::timeout(FINDINGS_FRESH_FOR, changes.changed()).await {
            Ok(Err(_)) => break, // the state is gone
            Ok(Ok(())) => tokio::time::sleep(FINDINGS_COALESCE).await,
            Err(_) => {} // nothing changed: time-based rules get their fresh look
        }
        let version = *changes.borrow_and_update();
        let link = state.link();
        let findings = diagnose(&state.read(), &link);
        let differ = store_findings(&mut state.findings_cache(), version, findings);
        if differ || published_version != Some(version) {
            published_version = Some(version);
            state.published.send_modify(|v| *v += 1);
        }
    }
}

/// The diagnostics of `stores` now.
fn diagnose(stores: &Stores, link: &Link) -> Arc<Vec<grappe_views::Finding>> {
    Arc::new(crate::diagnostics::diagnose(
        stores,
        link,
        now().unix_seconds(),
    ))
}

/// Keeps `findings` (of the state at `version`) in `cache` unless the cache already holds a
/// later version's; returns whether they differ from what the cache held.
fn store_findings(
    cache: &mut Option<CachedFindings>,
    version: u64,
    findings: Arc<Vec<grappe_views::Finding>>,
) -> bool {
    if cache.as_ref().is_some_and(|c| c.version > version) {
        return false;
    }
    let changed = cache.as_ref().is_none_or(|c| c.findings != findings);
    *cache = Some(CachedFindings {
        version,
        at: std::time::Instant::now(),
        findings,
    });
    changed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::diagnostics::NO_CNI;
    use model::NodeInfo;
    use store::Change;

    fn not_ready(name: &str) -> NodeInfo {
        let node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "False",
                "message": "container runtime network not ready: cni plugin not initialized"}]}
        }))
        .expect("node");
        NodeInfo::from_node(node).expect("node info")
    }

    /// The version the cached diagnostics were computed for.
    fn diagnosed_version(state: &ClusterState) -> Option<u64> {
        state.findings_cache().as_ref().map(|c| c.version)
    }

    /// The nodes of the `cni.none` finding.
    fn no_cni_nodes(state: &ClusterState) -> Vec<String> {
        let findings = state.findings();
        let none = findings.iter().find(|f| f.rule == NO_CNI);
        none.expect("cni.none").nodes.clone()
    }

    #[tokio::test]
    async fn browsers_are_told_once_a_burst_is_diagnosed() {
        let state = Arc::new(ClusterState::new(ClusterName::parse("lab").expect("name")));
        tokio::spawn(refresh_findings(Arc::clone(&state)));
        let mut published = state.subscribe();
        tokio::task::yield_now().await;

        state.update(|s| s.apply_nodes(Change::Upsert(not_ready("rigel"))));
        tokio::time::timeout(Duration::from_secs(5), published.changed())
            .await
            .expect("published within 5 s")
            .expect("state alive");
        // Told only once the diagnostics of the change are there: no page computes them.
        assert_eq!(diagnosed_version(&state), Some(state.version()));
        assert_eq!(no_cni_nodes(&state), ["rigel"]);

        // Fifty changes at once: one diagnosis, one event, and it covers all of them.
        published.borrow_and_update();
        for i in 0..50 {
            state.update(|s| s.apply_nodes(Change::Upsert(not_ready(&format!("w{i:02}")))));
        }
        tokio::time::timeout(Duration::from_secs(5), published.changed())
            .await
            .expect("published within 5 s")
            .expect("state alive");
        published.borrow_and_update();
        assert_eq!(diagnosed_version(&state), Some(state.version()));
        assert_eq!(no_cni_nodes(&state).len(), 51);
        assert!(
            tokio::time::timeout(Duration::from_millis(800), published.changed())
                .await
                .is_err(),
            "a second event for the same burst"
        );
    }

    #[test]
    fn a_slower_diagnosis_of_an_older_state_does_not_replace_a_newer_one() {
        let mut cache = None;
        let newer = Arc::new(vec![]);
        assert!(store_findings(&mut cache, 7, newer));
        let mut stores = Stores::default();
        stores.apply_nodes(Change::Upsert(not_ready("rigel")));
        let older = diagnose(&stores, &Link::default());
        assert!(!older.is_empty(), "a node without CNI has its finding");
        assert!(!store_findings(&mut cache, 6, older));
        assert_eq!(cache.as_ref().map(|c| c.version), Some(7));
        assert!(cache.as_ref().is_some_and(|c| c.findings.is_empty()));
        // The same version diagnosed again (time-based rules) replaces it.
        let again = diagnose(&stores, &Link::default());
        assert!(store_findings(&mut cache, 7, again));
        assert!(cache.as_ref().is_some_and(|c| !c.findings.is_empty()));
    }
}
