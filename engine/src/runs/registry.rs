//! What the run core knows of a workflow: its id, its declared [`Policy`] and how to build the
//! executor of a stored run's steps. The core holds a [`Registry`] of [`Kind`]s, given at start
//! ([`super::kinds::registry`]), and names no workflow itself.
//!
//! A workflow's typed parameters, its preview and its start live in its own folder (`cni/`,
//! `drain/`, `reset/`, `recover/`); the start hands the core a [`super::Launch`].

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{RunError, Runs};
use crate::model::{RunRow, Workflow};
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
}

impl Policy {
    /// What an unknown workflow gets: admins only, nothing more.
    pub const STRICT: Policy = Policy {
        lease: true,
        roll_back: false,
        control: Role::Admin,
        start: Role::Admin,
        approval: None,
    };
}

/// Executes the steps of one run, one at a time, in order.
pub(crate) trait Executor: Send {
    /// Runs the step at `idx` named `name`. Steps are idempotent: each looks at the cluster
    /// or the host first, so a resumed run repeats a half-done step safely.
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
}

/// A workflow, as the core sees it.
pub(crate) trait Kind: Send + Sync {
    /// Its id, as stored in a run's row.
    fn id(&self) -> Workflow;
    /// What it declares.
    fn policy(&self) -> Policy;
    /// The executor of `run`'s steps; `cancel` turns true when the run is asked to stop.
    fn executor<'a>(
        &'a self,
        runs: &'a Runs,
        run: &'a RunRow,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Box<dyn Executor>, RunError>>;
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
    pub(crate) fn kind(&self, workflow: &str) -> Option<&dyn Kind> {
        let id = Workflow::parse(workflow)?;
        self.kinds.iter().find(|k| k.id() == id).map(AsRef::as_ref)
    }

    /// The policy of a stored workflow id; [`Policy::STRICT`] for an unknown one.
    pub(crate) fn policy(&self, workflow: &str) -> Policy {
        self.kind(workflow).map_or(Policy::STRICT, Kind::policy)
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
        assert_eq!(registry.policy("cni.bogus"), Policy::STRICT);
        assert!(registry.kind("cni.bogus").is_none());
    }
}
