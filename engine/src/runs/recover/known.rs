//! The control-plane nodes a recovery works on: from the live state, or as last seen when
//! Grappe started while the API server was already down (a restarted Grappe during an outage
//! still knows which hosts to reach). A background task remembers them in the database.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::names::ClusterName;
use crate::runs::{RunError, Runs};

/// How often the remembered control planes are compared with the live state.
const REMEMBER_EVERY: Duration = Duration::from_secs(10);

/// A cluster's control-plane nodes in its live state (name, InternalIP); empty before the node
/// list was read.
fn live(runs: &Runs, cluster: &ClusterName) -> Vec<(String, Option<String>)> {
    runs.inner()
        .states
        .get(cluster)
        .map(|s| {
            s.nodes_page(&grappe_views::NodesQuery {
                role: "control-plane".to_owned(),
                per_page: grappe_views::MAX_PER_PAGE,
                ..Default::default()
            })
            .rows
            .into_iter()
            .map(|r| (r.name, r.internal_ip))
            .collect()
        })
        .unwrap_or_default()
}

impl Runs {
    /// `cluster`'s control-plane nodes: as the live state has them, else as last remembered.
    pub(super) async fn control_planes(
        &self,
        cluster: &ClusterName,
    ) -> Result<Vec<(String, Option<String>)>, RunError> {
        let now = live(self, cluster);
        if !now.is_empty() {
            return Ok(now);
        }
        Ok(self
            .inner()
            .store
            .known_control_planes(cluster.as_str())
            .await?)
    }
}

/// Remembers every cluster's control-plane nodes whenever the live state shows others than
/// those remembered; runs until the process ends.
pub fn remember_control_planes(
    runs: Runs,
    clusters: Vec<ClusterName>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut remembered: BTreeMap<ClusterName, Vec<(String, Option<String>)>> = BTreeMap::new();
        loop {
            for cluster in &clusters {
                let now = live(&runs, cluster);
                if now.is_empty() || remembered.get(cluster) == Some(&now) {
                    continue;
                }
                match runs
                    .inner()
                    .store
                    .remember_control_planes(cluster.as_str(), &now)
                    .await
                {
                    Ok(()) => {
                        remembered.insert(cluster.clone(), now);
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %cluster, error = %crate::audit::error_chain(&e), "could not remember the control plane");
                    }
                }
            }
            tokio::time::sleep(REMEMBER_EVERY).await;
        }
    })
}
