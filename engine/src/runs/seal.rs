//! The seal of a finished run: a digest over its rows in its final audit record, which the
//! audit hash chain covers, so a changed run row is detectable.

use sha2::{Digest, Sha256};

use super::lifecycle::run_target;
use super::{RunError, RunId, RunStatus, Runs};
use crate::audit::{Action, AuditEntry, Caller, Outcome, error_chain};
use crate::model::RunRow;

impl Runs {
    /// Writes the run's digest and its final audit record.
    pub(super) async fn seal(&self, id: RunId, caller: &Caller) {
        let result = async {
            let run = self.load(id).await?;
            let digest = self.digest(&run).await?;
            self.inner.store.set_run_digest(id, &digest).await?;
            let outcome = if run.status == RunStatus::Succeeded {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            let entry = AuditEntry::new(caller, Action::RunFinish, run_target(&run), outcome)
                .detail("workflow", run.workflow.as_str())
                .detail("status", run.status.as_str())
                .detail("error", run.error.clone())
                .detail("digest", digest);
            self.inner
                .audit
                .append(entry)
                .await
                .map_err(RunError::AuditUnavailable)?;
            Ok::<_, RunError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(run = id.0, error = %error_chain(&e), "could not seal a finished run");
        }
    }

    /// sha256 over the run's rows (without the digest itself).
    async fn digest(&self, run: &RunRow) -> Result<String, RunError> {
        let steps = self.inner.store.run_steps(run.id).await?;
        let objects = self.inner.store.run_objects(run.id).await?;
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        for s in [
            run.id.0.to_string().as_str(),
            run.cluster.as_str(),
            run.workflow.as_str(),
            &run.params,
            &run.actor,
            &run.plan,
            &run.plan_hash,
            &run.title,
            run.manifest_source.as_deref().unwrap_or(""),
            run.manifest_sha256.as_deref().unwrap_or(""),
            &run.confirmation,
            run.status.as_str(),
            &run.started_at,
            run.finished_at.as_deref().unwrap_or(""),
            run.error.as_deref().unwrap_or(""),
        ] {
            field(s);
        }
        // Runs sealed before failures had codes have neither: their digest is unchanged.
        if let Some(code) = &run.error_code {
            field(code);
            field(run.error_params.as_deref().unwrap_or(""));
        }
        for s in &steps {
            for f in [
                s.name.as_str(),
                s.status.as_str(),
                s.started_at.as_deref().unwrap_or(""),
                s.finished_at.as_deref().unwrap_or(""),
                &s.output,
            ] {
                field(f);
            }
        }
        for o in &objects {
            for f in [
                o.kind.as_str(),
                o.namespace.as_deref().unwrap_or(""),
                &o.name,
                o.planned.as_str(),
                o.before.as_deref().unwrap_or(""),
                o.done.as_deref().unwrap_or(""),
            ] {
                field(f);
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Whether a finished run's rows still hash to the digest sealed in the audit log.
    ///
    /// # Errors
    /// [`RunError`] when the run or the audit log cannot be read.
    pub async fn verify(&self, id: RunId) -> Result<bool, RunError> {
        let run = self.load(id).await?;
        let sealed = self
            .inner
            .store
            .audit_details_for(Action::RunFinish.as_str(), &format!("run/{}", id.0))
            .await?;
        let Some(sealed) = sealed else {
            return Ok(false);
        };
        let sealed: serde_json::Value = serde_json::from_str(&sealed).unwrap_or_default();
        let digest = self.digest(&run).await?;
        Ok(
            sealed.get("digest").and_then(|d| d.as_str()) == Some(digest.as_str())
                && run.digest.as_deref() == Some(digest.as_str()),
        )
    }
}
