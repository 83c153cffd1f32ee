//! Node actions: cordon and uncordon (operator, audited), the drain's preview (operator) of
//! every pod's verdict (disabling eviction, which bypasses PodDisruptionBudgets, is for admins)
//! and the reset's preview (admin). Their runs start through [`super::runs::start_run`].

// The preview form's fields are the server function's arguments (one per kubectl flag).
#![allow(clippy::too_many_arguments)]

use grappe_views::runs::PlanView;
use leptos::prelude::*;

use crate::error::AppError;

/// Cordons (`what` = `cordon`) or uncordons (`uncordon`) a node (operator). Returns whether
/// the node changed.
#[server(endpoint = "cordon_node")]
pub async fn cordon_node(cluster: String, node: String, what: String) -> Result<bool, AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    let unschedulable = match what.as_str() {
        "cordon" => true,
        "uncordon" => false,
        other => return Err(AppError::Invalid(format!("unknown node action {other:?}"))),
    };
    let (cluster, node) = (guard::cluster(&cluster)?, guard::node(&node)?);
    engine
        .runs
        .set_unschedulable(&p.caller, &cluster, &node, unschedulable)
        .await
        .map_err(map_run_error)
}

/// Previews a drain (operator). `nodes` is one or more node names separated by spaces or
/// commas. Checkboxes arrive as `on` when ticked.
#[server(endpoint = "plan_node_drain")]
pub async fn plan_node_drain(
    cluster: String,
    nodes: String,
    #[server(default)] delete_emptydir_data: String,
    #[server(default)] ignore_daemonsets: String,
    #[server(default)] force: String,
    #[server(default)] disable_eviction: String,
    #[server(default)] grace_period: String,
    #[server(default)] timeout: String,
    #[server(default)] pod_selector: String,
    #[server(default)] skip_wait: String,
    #[server(default)] concurrency: String,
) -> Result<PlanView, AppError> {
    let (engine, _) = guard::require(Role::Operator).await?;
    let options = DrainForm {
        delete_emptydir_data,
        ignore_daemonsets,
        force,
        disable_eviction,
        grace_period,
        timeout,
        pod_selector,
        skip_wait,
        concurrency,
    }
    .options()?;
    require_for(&options).await?;
    let cluster = guard::cluster(&cluster)?;
    let request = DrainParams {
        nodes: split_nodes(&nodes)?,
        options,
    };
    engine
        .runs
        .plan_drain(&cluster, &request)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// Previews a node reset (admin). Checkboxes arrive as `on` when ticked.
#[server(endpoint = "plan_node_reset")]
pub async fn plan_node_reset(
    cluster: String,
    node: String,
    #[server(default)] remove_kubeconfig: String,
    #[server(default)] remove_cni_state: String,
    #[server(default)] delete_node: String,
    #[server(default)] reset_cluster: String,
) -> Result<PlanView, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    let options = ResetOptions {
        remove_kubeconfig: ticked(&remove_kubeconfig),
        remove_cni_state: ticked(&remove_cni_state),
        delete_node: ticked(&delete_node),
        reset_cluster: ticked(&reset_cluster),
    };
    let cluster = guard::cluster(&cluster)?;
    let request = ResetRequest {
        node: guard::node(&node)?,
        options,
    };
    engine
        .runs
        .plan_reset(&cluster, &request)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

#[cfg(feature = "ssr")]
use {
    super::guard,
    super::runs::map_run_error,
    grappe_engine::names::NodeName,
    grappe_engine::runs::drain::{DrainOptions, DrainParams},
    grappe_engine::runs::reset::ResetRequest,
    grappe_engine::users::Role,
    grappe_views::runs::ResetOptions,
};

/// The preview form as it arrives (every field a string).
#[cfg(feature = "ssr")]
struct DrainForm {
    delete_emptydir_data: String,
    ignore_daemonsets: String,
    force: String,
    disable_eviction: String,
    grace_period: String,
    timeout: String,
    pod_selector: String,
    skip_wait: String,
    concurrency: String,
}

/// Node names separated by spaces or commas.
#[cfg(feature = "ssr")]
fn split_nodes(nodes: &str) -> Result<Vec<NodeName>, AppError> {
    nodes
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(guard::node)
        .collect()
}

#[cfg(feature = "ssr")]
fn ticked(v: &str) -> bool {
    matches!(v, "on" | "true")
}

#[cfg(feature = "ssr")]
fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<Option<T>, AppError> {
    let v = v.trim().trim_end_matches('s');
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| AppError::Invalid(format!("{name} must be a whole number of seconds")))
}

/// The role the engine says a drain with `options` needs (disabling eviction: admins).
#[cfg(feature = "ssr")]
async fn require_for(options: &DrainOptions) -> Result<(), AppError> {
    guard::require(grappe_engine::runs::drain::start_role(options)).await?;
    Ok(())
}

#[cfg(feature = "ssr")]
impl DrainForm {
    /// The options the form says (unset fields take the defaults).
    fn options(&self) -> Result<DrainOptions, AppError> {
        let defaults = DrainOptions::default();
        let concurrency: Option<usize> = number("concurrency", &self.concurrency)
            .map_err(|_| AppError::Invalid("concurrency must be a whole number".into()))?;
        Ok(DrainOptions {
            delete_emptydir_data: ticked(&self.delete_emptydir_data),
            ignore_daemonsets: ticked(&self.ignore_daemonsets),
            force: ticked(&self.force),
            disable_eviction: ticked(&self.disable_eviction),
            grace_period_seconds: number("grace period", &self.grace_period)?,
            timeout_seconds: number("timeout", &self.timeout)?.unwrap_or(defaults.timeout_seconds),
            pod_selector: self.pod_selector.trim().to_owned(),
            skip_wait_for_delete_timeout_seconds: number(
                "skip-wait-for-delete timeout",
                &self.skip_wait,
            )?
            .unwrap_or(0),
            concurrency: concurrency.unwrap_or(defaults.concurrency),
        })
    }
}
