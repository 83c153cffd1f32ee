//! What every read-only host action shares (the check, the path-MTU probe, the BGP session
//! table): connect, run one fixed script, close; a failure audited with its error chain before
//! it is returned, a success audited with the action's details.

use super::commands::{Arg, Script};
use super::{Endpoint, Output, Ssh, SshError};
use crate::audit::{Action, AuditEntry, Caller, Outcome, Target};

/// The audit target of an action on `endpoint`'s node, about `object` if any.
pub(super) fn target(endpoint: &Endpoint, object: Option<&str>) -> Target {
    Target {
        cluster: Some(endpoint.cluster.to_string()),
        node: Some(endpoint.node.to_string()),
        object: object.map(str::to_owned),
    }
}

impl Ssh {
    /// Runs `script` with `args` on `endpoint`'s host; a failure is audited as `action`'s.
    pub(super) async fn read_host(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        (action, object): (Action, Option<&str>),
        script: &Script,
        args: &[Arg],
    ) -> Result<Output, SshError> {
        let result = async {
            let session = self.connect(endpoint).await?;
            let out = session.run_with(script, args, |_| {}).await;
            session.close().await;
            out
        }
        .await;
        if let Err(e) = &result {
            self.audit_failure(caller, endpoint, (action, object), e)
                .await;
        }
        result
    }

    /// Audits `action` as failed with `e`'s cause chain (a log line if the audit cannot be
    /// written: the action's own error is what the caller returns).
    pub(super) async fn audit_failure(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        (action, object): (Action, Option<&str>),
        e: &SshError,
    ) {
        let entry = AuditEntry::new(caller, action, target(endpoint, object), Outcome::Failure)
            .detail("endpoint", endpoint.display())
            .detail("error", crate::audit::error_chain(e));
        if let Err(a) = self.inner.audit.append(entry).await {
            tracing::error!(action = action.as_str(), error = %crate::audit::error_chain(&a), "could not record a failed host action");
        }
    }

    /// Audits a success; without the audit record the action's result is not returned.
    pub(super) async fn audit_success(&self, entry: AuditEntry) -> Result<(), SshError> {
        self.inner
            .audit
            .append(entry)
            .await
            .map(|_| ())
            .map_err(SshError::Audit)
    }
}
