//! A node's host over SSH: the SSH side of its page (viewer), the read-only check, the
//! path-MTU probe and the BGP session table (operator, audited) and trusting a host key (admin,
//! audited). A check against an unknown or changed host key
//! does not fail with a bare message: it returns the presented key, so that an admin can
//! compare its fingerprint with the host's and trust it.

use grappe_views::bgp::NodeSessionsView;
use grappe_views::hosts::{HostCheckView, HostKeyView, HostView};
use grappe_views::mtu::ProbeView;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What a check came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckOutcome {
    Done(Box<HostCheckView>),
    /// The host presented a key that is not pinned: nothing ran.
    UntrustedKey {
        presented: HostKeyView,
        /// The pinned key when the presented one differs from it (a changed key).
        pinned: Option<HostKeyView>,
        message: String,
    },
}

/// The SSH side of a node's page (viewer).
#[server(endpoint = "get_host")]
pub async fn get_host(cluster: String, node: String) -> Result<HostView, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    let (c, n, ip) = locate(&engine, &cluster, &node)?;
    engine
        .ssh
        .host_view(&c, &n, ip.as_deref())
        .await
        .map_err(map_ssh_error)
}

/// Runs the read-only check on a node's host (operator).
#[server(endpoint = "check_host")]
pub async fn check_host(cluster: String, node: String) -> Result<CheckOutcome, AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    let endpoint = endpoint(&engine, &cluster, &node)?;
    match engine.ssh.check(&p.caller, &endpoint).await {
        Ok(view) => {
            // Its links' MTUs feed the MTU page and its rule.
            if let Some(state) = engine.states.get(&endpoint.cluster) {
                state.record_host_check(&view);
            }
            Ok(CheckOutcome::Done(Box::new(view)))
        }
        Err(e) => untrusted(&e).ok_or_else(|| map_ssh_error(e)),
    }
}

/// Probes the path MTU from `from`'s host to `to`'s InternalIP (operator, audited).
#[server(endpoint = "probe_mtu")]
pub async fn probe_mtu(cluster: String, from: String, to: String) -> Result<ProbeView, AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    if from == to {
        return Err(AppError::Invalid(
            "a probe goes from one node to another: choose two nodes".into(),
        ));
    }
    let endpoint = endpoint(&engine, &cluster, &from)?;
    let (_, target, ip) = locate(&engine, &cluster, &to)?;
    let ip: std::net::IpAddr = ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| AppError::Invalid(format!("node {target} has no InternalIP to probe")))?;
    let view = engine
        .ssh
        .probe_mtu(&p.caller, &endpoint, target.as_str(), ip)
        .await
        .map_err(map_ssh_error)?;
    if let Some(state) = engine.states.get(&endpoint.cluster) {
        state.record_probe(view.clone());
    }
    Ok(view)
}

/// A node's BGP session table from its calico-node's BIRD, over SSH (operator, audited).
#[server(endpoint = "node_bgp_sessions")]
pub async fn node_bgp_sessions(
    cluster: String,
    node: String,
) -> Result<NodeSessionsView, AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    let endpoint = endpoint(&engine, &cluster, &node)?;
    let mut view = engine
        .ssh
        .bgp_sessions(&p.caller, &endpoint)
        .await
        .map_err(map_ssh_error)?;
    if let Some(state) = engine.states.get(&endpoint.cluster) {
        state.name_bgp_peers(&mut view);
    }
    Ok(view)
}

/// Pins the host key a node presents now, if its fingerprint is `fingerprint` (admin).
#[server(endpoint = "trust_host_key")]
pub async fn trust_host_key(
    cluster: String,
    node: String,
    fingerprint: String,
    #[server(default)] password: String,
) -> Result<HostKeyView, AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    guard::reauthenticated(&engine, &p, &password, false).await?;
    let endpoint = endpoint(&engine, &cluster, &node)?;
    engine
        .ssh
        .trust(&p.caller, &endpoint, fingerprint.trim())
        .await
        .map(|k| HostKeyView {
            algorithm: k.algorithm,
            fingerprint: k.fingerprint,
        })
        .map_err(map_ssh_error)
}

#[cfg(feature = "ssr")]
use {
    super::guard,
    grappe_engine::Engine,
    grappe_engine::names::{ClusterName, NodeName},
    grappe_engine::ssh::{Endpoint, SshError},
    grappe_engine::users::Role,
};

/// The cluster, the node and its InternalIP from the live state (if known).
#[cfg(feature = "ssr")]
fn locate(
    engine: &Engine,
    cluster: &str,
    node: &str,
) -> Result<(ClusterName, NodeName, Option<String>), AppError> {
    let c = ClusterName::parse(cluster)
        .ok()
        .filter(|c| engine.clusters.spec(c).is_some())
        .ok_or_else(|| AppError::NotFound(format!("cluster {cluster}")))?;
    let n = NodeName::parse(node).map_err(|e| AppError::Invalid(e.to_string()))?;
    let ip = engine
        .states
        .get(&c)
        .and_then(|s| s.node_detail(n.as_str()))
        .and_then(|d| d.row.internal_ip);
    Ok((c, n, ip))
}

#[cfg(feature = "ssr")]
pub(crate) fn endpoint(engine: &Engine, cluster: &str, node: &str) -> Result<Endpoint, AppError> {
    let (c, n, ip) = locate(engine, cluster, node)?;
    engine
        .ssh
        .endpoint(&c, &n, ip.as_deref())
        .map_err(map_ssh_error)
}

#[cfg(feature = "ssr")]
fn untrusted(e: &SshError) -> Option<CheckOutcome> {
    let key = |k: &grappe_engine::ssh::HostKey| HostKeyView {
        algorithm: k.algorithm.clone(),
        fingerprint: k.fingerprint.clone(),
    };
    match e {
        SshError::UnknownHostKey { key: k, .. } => Some(CheckOutcome::UntrustedKey {
            presented: key(k),
            pinned: None,
            message: e.to_string(),
        }),
        SshError::ChangedHostKey {
            pinned, presented, ..
        } => Some(CheckOutcome::UntrustedKey {
            presented: key(presented),
            pinned: Some(key(pinned)),
            message: e.to_string(),
        }),
        _ => None,
    }
}

/// SSH failures the user can act on are shown as they are (they name hosts and keys, never
/// secrets); the database's are internal.
#[cfg(feature = "ssr")]
pub(crate) fn map_ssh_error(e: SshError) -> AppError {
    match e {
        SshError::Store(_) | SshError::Audit(_) => AppError::internal(&e),
        SshError::NotConfigured(_) | SshError::NoAddress(_) => AppError::Invalid(e.to_string()),
        other => {
            tracing::warn!(error = %grappe_engine::audit::error_chain(&other), "SSH failed");
            AppError::Invalid(grappe_engine::audit::error_chain(&other))
        }
    }
}
