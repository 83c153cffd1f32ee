//! Workflow runs: the CNI catalog and plans (admin; they change nothing in the cluster), the
//! recovery's and a rollback's plans, one start for every workflow's confirmed plan (the words
//! typed, the password again when the workflow or an old login asks for it), cancel / resume /
//! abandon and approval as the workflow's policy allows, and reading runs (viewer).

use grappe_views::runs::{ActiveRunView, PlanView, RunSummaryView, RunView};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A catalog manifest, as the install form offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub id: String,
    pub label: String,
    pub url: String,
    pub sha256: String,
    /// Installed by the Tigera operator (the form offers the operator's options).
    pub operator: bool,
}

/// The catalog (viewer).
#[server(endpoint = "cni_catalog")]
pub async fn cni_catalog() -> Result<Vec<CatalogItem>, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    Ok(grappe_engine::manifests::CATALOG
        .iter()
        .map(|e| CatalogItem {
            id: e.id.to_owned(),
            label: e.label(),
            url: engine.runs.fetcher().catalog_url(e),
            sha256: e.sha256.to_owned(),
            operator: e.operator(),
        })
        .collect())
}

/// Plans an install or upgrade (admin). `source` is a catalog id, `url` (with `url`) or `paste`
/// (with `text`, a custom manifest, unverified; `file_name` when the text came from a file).
#[server(endpoint = "plan_cni_install")]
pub async fn plan_cni_install(
    cluster: String,
    source: String,
    #[server(default)] url: String,
    #[server(default)] text: String,
    #[server(default)] file_name: String,
    #[server(default)] calico: CalicoForm,
) -> Result<PlanView, AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    let source = match source.as_str() {
        "url" => Source::Url(&url),
        "paste" => Source::Upload {
            file_name: &file_name,
            text: &text,
        },
        id => Source::Catalog(id),
    };
    let cluster = guard::cluster(&cluster)?;
    let manifest = get_manifest(&engine, &p.caller, source).await?;
    let is_operator = manifest.catalog.is_some_and(|e| e.operator());
    let migrate = calico.migrate.is_some();
    let mut params = InstallParams {
        manifest_sha256: manifest.sha256.clone(),
        ipv4pool_cidr: non_empty(calico.ipv4pool_cidr.clone()),
        ip_autodetection_method: non_empty(calico.ip_autodetection_method.clone()),
        operator: calico.operator_options(is_operator)?,
        migrate,
    };
    if migrate {
        // The operator reads the install's settings: the form's empty fields are no options,
        // a filled one is refused by the engine.
        params.operator = params.operator.filter(|o| *o != Default::default());
    }
    engine
        .runs
        .plan_install(&cluster, &manifest, &params)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// Calico's install options as the install form sends them (`calico[ipv4pool_cidr]`, ...):
/// text fields, empty when not set, and checkboxes, present when ticked. The block size, the
/// encapsulation, the MTU and the components are the Tigera operator's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalicoForm {
    #[serde(default)]
    pub ipv4pool_cidr: String,
    #[serde(default)]
    pub ip_autodetection_method: String,
    #[serde(default)]
    pub block_size: String,
    #[serde(default)]
    pub encapsulation: String,
    #[serde(default)]
    pub mtu: String,
    #[serde(default)]
    pub apiserver: Option<String>,
    #[serde(default)]
    pub goldmane: Option<String>,
    #[serde(default)]
    pub whisker: Option<String>,
    /// Hand the manifest install to the operator (an operator entry only).
    #[serde(default)]
    pub migrate: Option<String>,
}

#[cfg(feature = "ssr")]
impl CalicoForm {
    /// The operator's options, for an operator entry; for another entry, an error if any
    /// was given.
    fn operator_options(
        self,
        operator: bool,
    ) -> Result<Option<grappe_engine::manifests::operator::OperatorOptions>, AppError> {
        let number = |name: &str, text: &str| -> Result<Option<u32>, AppError> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse()
                .map(Some)
                .map_err(|_| AppError::Invalid(format!("{name} {text:?}: a whole number")))
        };
        let block_size =
            number("block size", &self.block_size)?.map(|b| u8::try_from(b).unwrap_or(u8::MAX));
        let options = grappe_engine::manifests::operator::OperatorOptions {
            block_size,
            encapsulation: non_empty(self.encapsulation),
            mtu: number("MTU", &self.mtu)?,
            apiserver: self.apiserver.is_some(),
            goldmane: self.goldmane.is_some(),
            whisker: self.whisker.is_some(),
        };
        if operator {
            Ok(Some(options))
        } else if options == Default::default() {
            Ok(None)
        } else {
            Err(AppError::Invalid(
                "block size, encapsulation, MTU and components are options of the Tigera operator's entries".into(),
            ))
        }
    }
}

/// Starts a confirmed plan of any workflow: the plan's workflow, cluster, request and hash as
/// it showed them, the words typed, the password when the workflow or an old login asks for it,
/// and whether the plan's offer (a recovery's rollback) stays ticked. Who may start what is the
/// engine's answer (the workflow's policy with the request's options).
#[server(endpoint = "start_run")]
pub async fn start_run(
    workflow: String,
    cluster: String,
    request: String,
    plan_hash: String,
    confirm: String,
    #[server(default)] offer: bool,
    #[server(default)] password: String,
) -> Result<i64, AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    let workflow = Workflow::parse(&workflow)
        .ok_or_else(|| AppError::Invalid(format!("unknown workflow {workflow:?}")))?;
    let cluster = guard::cluster(&cluster)?;
    let request: serde_json::Value =
        serde_json::from_str(&request).map_err(|e| AppError::Invalid(format!("request: {e}")))?;
    let actor = actor(&p);
    engine
        .runs
        .may_start(&actor, workflow, &request)
        .map_err(map_run_error)?;
    let confirmation = confirmation(&engine, &p, workflow, confirm, &password).await?;
    let start = Start {
        workflow,
        cluster,
        request,
        plan_hash,
        offer,
        confirmation,
    };
    engine
        .runs
        .start(&actor, start)
        .await
        .map(|id| id.0)
        .map_err(map_run_error)
}

/// One object of a manifest's plan as it would be applied, as YAML (admin): the plan's
/// `request` names the stored manifest and the install's options; a Secret's values show as
/// digests.
#[server(endpoint = "plan_object_yaml")]
pub async fn plan_object_yaml(
    request: String,
    api_version: String,
    kind: String,
    #[server(default)] namespace: String,
    name: String,
) -> Result<String, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    let params: InstallParams =
        serde_json::from_str(&request).map_err(|e| AppError::Invalid(format!("request: {e}")))?;
    let object = grappe_engine::runs::k8s::ObjectRef {
        api_version,
        kind,
        namespace: non_empty(namespace),
        name,
    };
    let missing = AppError::NotFound(object.key());
    engine
        .runs
        .planned_object_yaml(&params, &object)
        .await
        .map_err(map_run_error)?
        .ok_or(missing)
}

/// Plans removing a catalog manifest's objects (admin): `kubectl delete -f`.
#[server(endpoint = "plan_cni_remove")]
pub async fn plan_cni_remove(cluster: String, source: String) -> Result<PlanView, AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    let cluster = guard::cluster(&cluster)?;
    let manifest = get_manifest(&engine, &p.caller, Source::Catalog(&source)).await?;
    engine
        .runs
        .plan_remove(&cluster, &manifest)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// Plans the release of a cluster's leaked IPAM addresses (admin): all of them, those
/// allocated `grace_seconds` ago or more (empty: calico-kube-controllers' 15 minutes).
#[server(endpoint = "plan_ipam_release")]
pub async fn plan_ipam_release(
    cluster: String,
    #[server(default)] grace_seconds: String,
) -> Result<PlanView, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    let cluster = guard::cluster(&cluster)?;
    let grace = match grace_seconds.trim() {
        "" => None,
        text => Some(text.parse::<u64>().map_err(|_| {
            AppError::Invalid(format!("grace period {text:?}: a whole number of seconds"))
        })?),
    };
    let request = grappe_engine::runs::cni::ReleaseRequest {
        addresses: Vec::new(),
        grace_seconds: grace,
    };
    engine
        .runs
        .plan_ipam_release(&cluster, &request)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// Plans the rollback of a finished run (admin).
#[server(endpoint = "plan_run_rollback")]
pub async fn plan_run_rollback(run: i64) -> Result<PlanView, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    engine
        .runs
        .plan_rollback(RunId(run))
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// Cancels, resumes or abandons a run (`what`: `cancel`, `resume` or `abandon`) as the
/// workflow's policy allows the caller's role (operators control drains; the rest is admin).
/// A `password` given is checked first; the engine says when a resume needs one.
#[server(endpoint = "control_run")]
pub async fn control_run(
    run: i64,
    what: String,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Operator).await?;
    let what = grappe_engine::runs::Control::parse(&what)
        .ok_or_else(|| AppError::Invalid(format!("unknown run action {what:?}")))?;
    let reauthenticated = !password.is_empty();
    if reauthenticated {
        guard::check_password(&engine, &p, &password).await?;
    }
    engine
        .runs
        .control(&actor(&p), RunId(run), what, reauthenticated)
        .await
        .map_err(map_run_error)
}

/// One run with its plan, steps and objects, and what the reader may do to it (viewer).
#[server(endpoint = "get_run")]
pub async fn get_run(run: i64) -> Result<RunView, AppError> {
    let (engine, p) = guard::require(Role::Viewer).await?;
    engine
        .runs
        .view_as(&actor(&p), RunId(run))
        .await
        .map_err(map_run_error)
}

/// The cluster's run in progress and where it is, if any (viewer): the pages a run is started
/// from show it with its bars.
#[server(endpoint = "active_run")]
pub async fn active_run(cluster: String) -> Result<Option<ActiveRunView>, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    let cluster = guard::cluster(&cluster)?;
    engine
        .runs
        .active(cluster.as_str())
        .await
        .map_err(map_run_error)
}

/// Previews the recovery of a lost kube-apiserver over SSH (admin).
#[server(endpoint = "plan_recovery")]
pub async fn plan_recovery(cluster: String) -> Result<PlanView, AppError> {
    let (engine, _) = guard::require(Role::Admin).await?;
    let cluster = guard::cluster(&cluster)?;
    engine
        .runs
        .plan_recovery(&cluster)
        .await
        .map(|plan| plan.view())
        .map_err(map_run_error)
}

/// A second admin approves a run that waits for it (two-person rule; admin, not the run's
/// own actor).
#[server(endpoint = "approve_run")]
pub async fn approve_run(run: i64, #[server(default)] password: String) -> Result<(), AppError> {
    let (engine, p) = guard::require(Role::Admin).await?;
    guard::reauthenticated(&engine, &p, &password, false).await?;
    engine
        .runs
        .approve(&p.caller, RunId(run))
        .await
        .map_err(map_run_error)
}

/// Runs, newest first, optionally of one cluster (viewer).
#[server(endpoint = "list_runs")]
pub async fn list_runs(
    #[server(default)] cluster: String,
) -> Result<Vec<RunSummaryView>, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    let cluster = Some(cluster).filter(|c| !c.is_empty());
    engine
        .runs
        .list(cluster.as_deref(), None, 200)
        .await
        .map_err(map_run_error)
}

#[cfg(feature = "ssr")]
use {
    super::guard,
    grappe_engine::Engine,
    grappe_engine::audit::Caller,
    grappe_engine::auth::Principal,
    grappe_engine::manifests::{Manifest, ManifestError, Source},
    grappe_engine::runs::cni::InstallParams,
    grappe_engine::runs::{Confirmation, RunError, RunId, Start, Workflow},
    grappe_engine::users::Role,
};

#[cfg(feature = "ssr")]
pub(crate) fn actor(p: &Principal) -> grappe_engine::runs::Actor {
    grappe_engine::runs::Actor {
        caller: p.caller.clone(),
        role: p.user.role,
    }
}

#[cfg(feature = "ssr")]
fn non_empty(s: String) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The typed confirmation of a start of `workflow`, with the password checked again when its
/// policy always asks for it or the login is older than the re-authentication window.
#[cfg(feature = "ssr")]
pub(crate) async fn confirmation(
    engine: &Engine,
    p: &Principal,
    workflow: Workflow,
    typed: String,
    password: &str,
) -> Result<Confirmation, AppError> {
    let always = engine.runs.policy(workflow).password_always;
    let reauthenticated = guard::reauthenticated(engine, p, password, always).await?;
    Ok(Confirmation {
        typed,
        reauthenticated,
    })
}

#[cfg(feature = "ssr")]
async fn get_manifest(
    engine: &Engine,
    caller: &Caller,
    source: Source<'_>,
) -> Result<Manifest, AppError> {
    engine
        .runs
        .manifest(caller, source)
        .await
        .map_err(|e| match e {
            ManifestError::Store(_) | ManifestError::Audit(_) => AppError::internal(&e),
            // Download errors, checksums, sizes: the admin needs the cause.
            other => {
                tracing::warn!(error = %grappe_engine::audit::error_chain(&other), "manifest refused");
                AppError::Invalid(grappe_engine::audit::error_chain(&other))
            }
        })
}

#[cfg(feature = "ssr")]
pub(crate) fn map_run_error(e: RunError) -> AppError {
    match e {
        RunError::UnknownCluster(c) => AppError::NotFound(format!("cluster {c}")),
        RunError::UnknownRun(id) => AppError::NotFound(format!("run {id}")),
        RunError::UnknownNode { node, .. } => AppError::NotFound(format!("node {node}")),
        RunError::Invalid(_) => AppError::Invalid(e.to_string()),
        RunError::Forbidden { .. } => {
            tracing::warn!(error = %e, "run control refused");
            guard::set_status(http::StatusCode::FORBIDDEN);
            AppError::Forbidden
        }
        RunError::Store(_)
        | RunError::AuditUnavailable(_)
        | RunError::Encode(_)
        | RunError::Corrupt(_)
        | RunError::UnknownWorkflow(_)
        | RunError::Ssh(
            grappe_engine::ssh::SshError::Store(_) | grappe_engine::ssh::SshError::Audit(_),
        ) => AppError::internal(&e),
        // A refusal the engine names: translated on the page.
        other if other.code().is_some() => {
            tracing::info!(error = %other, "run refused");
            let (code, params) = other.code().unwrap_or_default();
            AppError::Refused {
                code: code.to_owned(),
                params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                text: other.to_string(),
            }
        }
        // Everything else says what to do about it (an API error with its cause): the admin
        // needs the cause.
        other => {
            tracing::warn!(error = %grappe_engine::audit::error_chain(&other), "run refused");
            AppError::Invalid(grappe_engine::audit::error_chain(&other))
        }
    }
}
