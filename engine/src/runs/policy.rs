//! Who may do what to a run, answered in one place from the workflow's declared
//! [`Policy`](super::Policy): the server functions ask [`Runs::control`], the pages read the
//! run view's [`RunCapabilities`] instead of deriving either from the role themselves.

use grappe_views::runs::{RunCapabilities, RunView};

use super::{RunError, RunId, RunStatus, Runs, StepStatus};
use crate::audit::Caller;
use crate::model::RunRow;
use crate::users::Role;

/// Who acts: the audit identity and the role of the session.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub role: Role,
}

/// What a person does to a run after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Cancel,
    Resume,
    Abandon,
}

impl Control {
    /// `cancel`, `resume` or `abandon` (what the run page's forms send).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cancel" => Some(Self::Cancel),
            "resume" => Some(Self::Resume),
            "abandon" => Some(Self::Abandon),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Resume => "resume",
            Self::Abandon => "abandon",
        }
    }
}

impl Runs {
    /// What `workflow` declares (who starts it, whether the password is always asked again).
    #[must_use]
    pub fn policy(&self, workflow: crate::model::Workflow) -> super::Policy {
        self.inner.registry.policy(workflow)
    }

    /// Cancels, resumes or abandons run `id` if `actor`'s role may control runs of its
    /// workflow (and, to resume, start it with its options). An unknown run is refused like a
    /// forbidden one (nothing tells a viewer which runs exist beyond what it may read). A resume
    /// of a workflow that declares [`Policy::resume_password`](super::Policy) needs
    /// `reauthenticated` (the caller gave the password again).
    ///
    /// # Errors
    /// [`RunError::Forbidden`], [`RunError::PasswordNeeded`], then as [`Runs::cancel`],
    /// [`Runs::resume`], [`Runs::abandon`].
    pub async fn control(
        &self,
        actor: &Actor,
        id: RunId,
        what: Control,
        reauthenticated: bool,
    ) -> Result<(), RunError> {
        let run = self.inner.store.run(id).await?;
        let needed = run
            .as_ref()
            .map_or(Role::Admin, |r| self.control_role(r, what));
        if run.is_none() || !actor.role.allows(needed) {
            tracing::warn!(actor = %actor.caller.actor, run = id.0, action = what.as_str(), "run control refused: role too low");
            return Err(RunError::Forbidden {
                what: what.as_str(),
                needed: needed.as_str(),
            });
        }
        let password = run
            .as_ref()
            .is_some_and(|r| self.inner.registry.policy(r.workflow).resume_password);
        if what == Control::Resume && password && !reauthenticated {
            return Err(RunError::PasswordNeeded(what.as_str()));
        }
        match what {
            Control::Cancel => self.cancel(&actor.caller, id).await,
            Control::Resume => self.resume(&actor.caller, id).await,
            Control::Abandon => self.abandon(&actor.caller, id).await,
        }
    }

    /// The least role that may do `what` to `run`.
    fn control_role(&self, run: &RunRow, what: Control) -> Role {
        match what {
            Control::Resume => self.inner.registry.resume_role(run),
            Control::Cancel | Control::Abandon => self.inner.registry.policy(run.workflow).control,
        }
    }

    /// Run `id` as `actor` sees it, with what `actor` may do to it now.
    ///
    /// # Errors
    /// As [`Runs::view`].
    pub async fn view_as(&self, actor: &Actor, id: RunId) -> Result<RunView, RunError> {
        let mut view = self.view(id).await?;
        let run = self.load(id).await?;
        view.may = self.capabilities(actor, &run, &view);
        Ok(view)
    }

    fn capabilities(&self, actor: &Actor, run: &RunRow, view: &RunView) -> RunCapabilities {
        let policy = self.inner.registry.policy(run.workflow);
        let control = actor.role.allows(policy.control);
        let awaiting_approval = run.status == RunStatus::Running
            && policy.approval.is_some_and(|step| {
                view.steps
                    .iter()
                    .any(|s| s.name == step && s.status == StepStatus::Running)
            });
        RunCapabilities {
            cancel: control && run.status == RunStatus::Running && !run.cancel_requested,
            resume: actor.role.allows(self.inner.registry.resume_role(run))
                && run.status == RunStatus::Interrupted,
            resume_password: policy.resume_password,
            abandon: control && run.status == RunStatus::Interrupted,
            roll_back: view.can_roll_back && actor.role.allows(Role::Admin),
            approve: awaiting_approval
                && actor.role.allows(Role::Admin)
                && actor.caller.actor != run.actor,
            awaiting_approval,
        }
    }
}
