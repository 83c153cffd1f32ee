//! Consent: the checks a plan shows and the hash that seals what the user confirms. A start
//! computes the plan again and runs only if its hash is the one confirmed.

use grappe_views::runs::CheckView;
use grappe_views::vocab::Level;
use sha2::{Digest, Sha256};

use crate::model::Plan;

/// A plan's check (`pass`, `warn`, `fail`; a failed check blocks the start).
pub(crate) fn check(id: &str, level: Level, message: impl Into<String>) -> CheckView {
    CheckView {
        id: id.to_owned(),
        level,
        message: message.into(),
    }
}

/// Seals a plan with the hash of everything it holds: what the user consents to.
pub(crate) fn sealed(plan: Plan) -> Plan {
    sealed_except(plan, |_| {})
}

/// Seals a plan with the hash of what it holds but what `shown_only` clears from the hashed
/// copy: the facts a workflow says move on their own between a preview and its start, shown
/// and not consented to (a drain: a pod's phase, a budget's healthy counts).
pub(crate) fn sealed_except(mut plan: Plan, shown_only: impl FnOnce(&mut Plan)) -> Plan {
    plan.hash = String::new();
    let mut basis = plan.clone();
    shown_only(&mut basis);
    let text = serde_json::to_string(&basis).unwrap_or_default();
    plan.hash = hex::encode(Sha256::digest(text.as_bytes()));
    plan
}

#[cfg(test)]
mod tests {
    use crate::runs::{RunError, RunId};

    #[test]
    fn refusals_carry_a_code_and_their_parameters_and_other_errors_none() {
        let (code, params) = RunError::NotConfirmed("lab".into()).code().expect("a code");
        assert_eq!(code, "run.not_confirmed");
        assert_eq!(params, vec![("expected", "lab".to_owned())]);
        let (code, params) = RunError::NotRollbackable(RunId(4), "it is running".into())
            .code()
            .expect("a code");
        assert_eq!(code, "run.not_rollbackable");
        assert_eq!(params[0], ("run", "4".to_owned()));
        assert!(RunError::Corrupt("unknown step".into()).code().is_none());
        let refusals = [
            RunError::PlanChanged,
            RunError::NotConfirmed("lab".into()),
            RunError::PasswordNeeded("resume"),
            RunError::ChecksFailed("no".into()),
            RunError::NotRollbackable(RunId(1), "no".into()),
            RunError::NotIndependent {
                approver: "bo".into(),
                why: "no".into(),
            },
            RunError::WrongStatus {
                id: RunId(1),
                status: "running",
                expected: "finished",
            },
        ];
        for e in refusals {
            let code = e.code().expect("a code").0;
            assert!(
                crate::runs::REFUSAL_CODES.contains(&code),
                "{code} not listed"
            );
        }
    }
}
