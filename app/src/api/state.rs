//! The live cluster views: overview, nodes table, node detail. The shapes are
//! [`grappe_views`]'s, computed by the engine from its shared watches (no API call per request).

use grappe_views::{NodeDetailView, NodesPageView, NodesQuery, OverviewView};
use leptos::prelude::*;

use crate::error::AppError;

/// A cluster's overview (viewer).
#[server(endpoint = "cluster_overview")]
pub async fn cluster_overview(cluster: String) -> Result<OverviewView, AppError> {
    let state = cluster_state(&cluster).await?;
    Ok(state.overview())
}

/// A cluster's IPAM: pools, nodes' blocks and what `calicoctl ipam check` reports (viewer).
#[server(endpoint = "cluster_ipam")]
pub async fn cluster_ipam(cluster: String) -> Result<grappe_views::ipam::IpamView, AppError> {
    let state = cluster_state(&cluster).await?;
    let mut view = state.ipam_page();
    let (engine, _) = super::guard::require(grappe_engine::users::Role::Viewer).await?;
    view.trends = engine
        .ipam_trends(&cluster)
        .await
        .map_err(|e| AppError::internal(&e))?;
    Ok(view)
}

/// A cluster's BGP peering: topology and the sessions reported down (viewer).
#[server(endpoint = "cluster_bgp")]
pub async fn cluster_bgp(cluster: String) -> Result<grappe_views::bgp::BgpView, AppError> {
    let state = cluster_state(&cluster).await?;
    Ok(state.bgp())
}

/// A cluster's MTU and encapsulation: each pool's budget, the hosts' links, the probes (viewer).
#[server(endpoint = "cluster_mtu")]
pub async fn cluster_mtu(cluster: String) -> Result<grappe_views::mtu::MtuView, AppError> {
    let state = cluster_state(&cluster).await?;
    Ok(state.mtu())
}

/// A page of the nodes table (viewer). Out-of-range pages are clamped.
#[server(endpoint = "list_nodes")]
pub async fn list_nodes(
    cluster: String,
    #[server(default)] query: NodesQuery,
) -> Result<NodesPageView, AppError> {
    let state = cluster_state(&cluster).await?;
    Ok(state.nodes_page(&query))
}

/// A node's page (viewer).
#[server(endpoint = "node_detail")]
pub async fn node_detail(cluster: String, node: String) -> Result<NodeDetailView, AppError> {
    let state = cluster_state(&cluster).await?;
    state
        .node_detail(&node)
        .ok_or_else(|| AppError::NotFound(format!("node {node} in cluster {cluster}")))
}

#[cfg(feature = "ssr")]
async fn cluster_state(
    cluster: &str,
) -> Result<std::sync::Arc<grappe_engine::state::ClusterState>, AppError> {
    use grappe_engine::names::ClusterName;
    use grappe_engine::users::Role;
    let (engine, _) = super::guard::require(Role::Viewer).await?;
    let not_found = || AppError::NotFound(format!("cluster {cluster}"));
    let name = ClusterName::parse(cluster).map_err(|_| not_found())?;
    engine.states.get(&name).ok_or_else(not_found)
}
