//! The configured clusters and whether their API servers answer.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A cluster in the switcher and on the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub name: String,
    pub reachable: bool,
    /// Kubernetes `gitVersion` when reachable.
    pub version: Option<String>,
    pub latency_ms: Option<u64>,
    /// Why it is unreachable.
    pub error: Option<String>,
    pub checked_at: String,
}

#[cfg(feature = "ssr")]
impl From<grappe_engine::clusters::ClusterStatus> for ClusterView {
    fn from(s: grappe_engine::clusters::ClusterStatus) -> Self {
        use grappe_engine::clusters::Reachability;
        let (reachable, version, latency_ms, error) = match s.reachability {
            Reachability::Reachable {
                version,
                latency_ms,
            } => (true, Some(version), Some(latency_ms), None),
            Reachability::Unreachable { error } => (false, None, None, Some(error)),
        };
        Self {
            name: s.name.to_string(),
            reachable,
            version,
            latency_ms,
            error,
            checked_at: s.checked_at.to_string(),
        }
    }
}

/// Every configured cluster with its reachability (probed for real, cached a few seconds).
#[server(endpoint = "list_clusters")]
pub async fn list_clusters() -> Result<Vec<ClusterView>, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    Ok(engine
        .clusters
        .statuses()
        .await
        .into_iter()
        .map(ClusterView::from)
        .collect())
}

/// One cluster's reachability.
#[server(endpoint = "cluster_status")]
pub async fn cluster_status(name: String) -> Result<ClusterView, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    let not_found = || AppError::NotFound(format!("cluster {name}"));
    let cluster = ClusterName::parse(&name).map_err(|_| not_found())?;
    engine
        .clusters
        .status(&cluster)
        .await
        .map(ClusterView::from)
        .ok_or_else(not_found)
}

#[cfg(feature = "ssr")]
use {super::guard, grappe_engine::names::ClusterName, grappe_engine::users::Role};
