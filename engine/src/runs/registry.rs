//! What the run core knows of a workflow: its id, its declared [`Policy`] and how to build the
//! executor of a stored run's steps. The core holds a [`Registry`] of [`Kind`]s, given at start
//! ([`super::kinds::registry`]), and names no workflow itself.
//!
//! A workflow's typed parameters, its preview and its start live in its own folder (`cni/`,
//! `drain/`, `reset/`, `recover/`): from the request a plan was made from, [`Kind::prepare`]
//! plans again and hands the core a [`super::Launch`].

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

use super::{Launch, RunError, Runs};
use crate::model::{RunRow, Workflow};
use crate::names::ClusterName;
use crate::users::Role;

/// What a workflow declares about its runs; the core and the policy checks read it, never the
/// workflow's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The run takes the cluster's `grappe-workflow` Lease (a recovery cannot: the API server
    /// is down).
    pub lease: bool,
    /// A finished run that changed objects can be rolled back.
    pub roll_back: bool,
    /// The least role that may cancel, resume or abandon a run.
    pub control: Role,
    /// The least role that may start one.
    pub start: Role,
    /// The step at which a run waits for a second admin's approval (two-person rule).
    pub approval: Option<&'static str>,
    /// The password is asked again at every start (a reset), not only when the login is older
    /// than the re-authentication window.
    pub password_always: bool,
    /// Resuming an interrupted run asks for the password again (it goes on changing a cluster
    /// or a host someone else may have planned).
    pub resume_password: bool,
}

impl Policy {
    /// An admin's workflow that takes the Lease, cannot be rolled back and needs no second
    /// admin: what workflows declare by difference (`Policy { roll_back: true, ..ADMIN }`).
    pub const ADMIN: Policy = Policy {
        lease: true,
        roll_back: false,
        control: Role::Admin,
        start: Role::Admin,
        approval: None,
        password_always: false,
        resume_password: true,
    };
    /// What an unknown workflow gets: admins only, nothing more.
    pub const STRICT: Policy = Self::ADMIN;
}

/// What building a run's executor needs.
pub(crate) struct Load<'a> {
    pub runs: &'a Runs,
    pub run: &'a RunRow,
    /// Turns true when the run is asked to stop.
    pub cancel: watch::Receiver<bool>,
}

/// An executor being built.
pub(crate) type Loading<'a> = BoxFuture<'a, Result<Box<dyn Executor>, RunError>>;

/// Builds an executor from `load`, boxed as the core holds it.
pub(crate) fn loading<'a, E: Executor + 'static>(
    load: impl Future<Output = Result<E, RunError>> + Send + 'a,
) -> Loading<'a> {
    Box::pin(async move { Ok(Box::new(load.await?) as Box<dyn Executor>) })
}

/// Executes the steps of one run, one at a time, in order.
pub(crate) trait Executor: Send {
    /// Runs the step at `idx` named `name`. Steps are idempotent: each looks at the cluster
    /// or the host first, so a resumed run repeats a half-done step safely.
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
}

/// A launch being prepared.
pub(crate) type Preparing<'a> = BoxFuture<'a, Result<Launch, RunError>>;

/// A workflow, as the core sees it.
pub(crate) trait Kind: Send + Sync {
    /// Its id, as stored in a run's row.
    fn id(&self) -> Workflow;
    /// What it declares.
    fn policy(&self) -> Policy;
    /// The run a confirmed `request` starts on `cluster`: the plan made again from the
    /// request (the core starts it only if its hash is the one confirmed), the parameters and
    /// the steps. `offer`: whether what the plan offers besides is included.
    fn prepare<'a>(
        &'a self,
        runs: &'a Runs,
        cluster: &'a ClusterName,
        request: &'a Value,
        offer: bool,
    ) -> Preparing<'a>;
    /// The executor of a stored run's steps.
    fn executor<'a>(&'a self, at: Load<'a>) -> Loading<'a>;
    /// The least role that may start a run with `params` (a start's request, a stored run's
    /// parameters): its options may need more than the workflow's [`Policy::start`].
    fn start_role(&self, params: &Value) -> Role {
        let _ = params;
        self.policy().start
    }
}

/// Reads a start's request as the workflow's typed request.
///
/// # Errors
/// [`RunError::Invalid`] naming what does not fit.
pub(crate) fn request<T: serde::de::DeserializeOwned>(request: &Value) -> Result<T, RunError> {
    T::deserialize(request).map_err(|e| RunError::Invalid(format!("request: {e}")))
}

/// Every workflow this engine runs.
pub struct Registry {
    kinds: Vec<Box<dyn Kind>>,
}

impl Registry {
    pub(crate) fn new(kinds: Vec<Box<dyn Kind>>) -> Self {
        Self { kinds }
    }

    /// The kind of a stored workflow id (`None`: a run of a workflow this build does not
    /// know, which it refuses to execute).
    pub(crate) fn kind(&self, workflow: Workflow) -> Option<&dyn Kind> {
        self.kinds
            .iter()
            .find(|k| k.id() == workflow)
            .map(AsRef::as_ref)
    }

    /// The policy of a workflow; [`Policy::STRICT`] for one this build does not run.
    pub(crate) fn policy(&self, workflow: Workflow) -> Policy {
        self.kind(workflow).map_or(Policy::STRICT, Kind::policy)
    }

    /// The least role that may resume `run`: who may control its workflow's runs and who may
    /// start it with its options (an operator may not resume an admin's drain that disables
    /// eviction).
    pub(crate) fn resume_role(&self, run: &RunRow) -> Role {
        let control = self.policy(run.workflow).control;
        let params = serde_json::from_str::<Value>(&run.params).ok();
        let start = self
            .kind(run.workflow)
            .zip(params)
            .map_or(Role::Admin, |(k, p)| k.start_role(&p));
        control.max(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workflow_has_one_kind_and_unknown_ones_are_strict() {
        let registry = super::super::kinds::registry();
        for w in Workflow::ALL {
            let kinds = registry.kinds.iter().filter(|k| k.id() == *w).count();
            assert_eq!(kinds, 1, "{} has {kinds} kinds", w.as_str());
        }
        assert_eq!(registry.policy(Workflow::NodeDrain).control, Role::Operator);
    }

    fn run_of(workflow: Workflow, params: String) -> RunRow {
        RunRow {
            id: super::super::RunId(1),
            cluster: ClusterName::parse("lab").expect("name"),
            workflow,
            params,
            actor: "ada".into(),
            plan: "{}".into(),
            plan_hash: String::new(),
            title: String::new(),
            manifest_source: None,
            manifest_sha256: None,
            confirmation: "{}".into(),
            status: crate::model::RunStatus::Interrupted,
            cancel_requested: false,
            started_at: String::new(),
            finished_at: None,
            error: None,
            error_code: None,
            error_params: None,
            digest: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_resume_needs_the_role_its_start_needed() {
        use crate::runs::drain::DrainParams;
        let registry = super::super::kinds::registry();
        let drain = |disable_eviction| {
            let params = DrainParams {
                nodes: vec![crate::names::NodeName::parse("rigel").expect("name")],
                options: grappe_views::runs::DrainOptions {
                    disable_eviction,
                    ..Default::default()
                },
            };
            run_of(
                Workflow::NodeDrain,
                serde_json::to_string(&params).expect("json"),
            )
        };
        assert_eq!(registry.resume_role(&drain(false)), Role::Operator);
        assert_eq!(
            registry.resume_role(&drain(true)),
            Role::Admin,
            "an operator may not resume an admin's drain that bypasses budgets"
        );
        assert_eq!(
            registry.resume_role(&run_of(Workflow::NodeDrain, "garbage".into())),
            Role::Admin
        );
        assert_eq!(
            registry.resume_role(&run_of(Workflow::CniInstall, "{}".into())),
            Role::Admin
        );
        assert!(registry.policy(Workflow::CniInstall).resume_password);
        assert!(registry.policy(Workflow::NodeReset).resume_password);
        assert!(!registry.policy(Workflow::NodeDrain).resume_password);
    }
}
