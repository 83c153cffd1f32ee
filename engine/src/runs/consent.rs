//! Consent: the checks a plan shows and the hash that seals what the user confirms. A start
//! computes the plan again and runs only if its hash is the one confirmed.

use grappe_views::runs::{CheckView, DrainPreviewView, PlanView};
use sha2::{Digest, Sha256};

/// A plan's check (`pass`, `warn`, `fail`; a failed check blocks the start).
pub(crate) fn check(id: &str, level: &str, message: impl Into<String>) -> CheckView {
    CheckView {
        id: id.to_owned(),
        level: level.to_owned(),
        message: message.into(),
    }
}

/// Seals a plan with the hash of what the user consents to: everything it shows but a drain's
/// live figures ([`DrainPreviewView::without_live_figures`]). Hashed, they refused a drain
/// previewed while a pod on the node turned from Pending to Running after a CNI install.
pub(crate) fn sealed(mut plan: PlanView) -> PlanView {
    plan.hash = String::new();
    let mut basis = plan.clone();
    basis.drain = plan
        .drain
        .as_ref()
        .map(DrainPreviewView::without_live_figures);
    let text = serde_json::to_string(&basis).unwrap_or_default();
    plan.hash = hex::encode(Sha256::digest(text.as_bytes()));
    plan
}

#[cfg(test)]
mod tests {
    use grappe_views::runs::{DrainNodeView, DrainOptions, PdbAtZeroView, PodVerdictView, Verdict};

    use super::*;
    use crate::model::Workflow;

    fn drain_plan(phase: &str, healthy: i32, verdict: Verdict) -> PlanView {
        PlanView {
            cluster: "lab".into(),
            workflow: Workflow::NodeDrain.as_str().into(),
            title: "drain saiph".into(),
            manifest_source: None,
            manifest_sha256: None,
            verified: false,
            options: Vec::new(),
            objects: Vec::new(),
            checks: vec![check("pods", "pass", "1 pod(s) to remove")],
            drain: Some(DrainPreviewView {
                options: DrainOptions::default(),
                nodes: vec![DrainNodeView {
                    node: "saiph".into(),
                    status: "Ready".into(),
                    pods: vec![PodVerdictView {
                        namespace: "demo".into(),
                        name: "web-1".into(),
                        owner: "ReplicaSet/web-5d".into(),
                        phase: phase.into(),
                        verdict,
                        reason: String::new(),
                        blocking_pdbs: vec!["demo/web".into()],
                    }],
                }],
                pdbs_at_zero: vec![PdbAtZeroView {
                    namespace: "demo".into(),
                    name: "web".into(),
                    current_healthy: healthy,
                    desired_healthy: healthy,
                    pods: vec!["demo/web-1".into()],
                }],
            }),
            reset: None,
            recovery: None,
            hash: String::new(),
        }
    }

    #[test]
    fn a_drain_hash_ignores_live_figures_but_not_verdicts() {
        let planned = sealed(drain_plan("Pending", 2, Verdict::Evict));
        let started = sealed(drain_plan("Running", 3, Verdict::Evict));
        assert_eq!(planned.hash, started.hash);
        // What is shown keeps the live figures.
        assert_eq!(
            started
                .drain
                .as_ref()
                .map(|d| d.pdbs_at_zero[0].current_healthy),
            Some(3)
        );
        assert_ne!(
            planned.hash,
            sealed(drain_plan("Pending", 2, Verdict::Delete)).hash
        );
        let mut other_pod = drain_plan("Pending", 2, Verdict::Evict);
        if let Some(d) = other_pod.drain.as_mut() {
            d.nodes[0].pods[0].name = "web-2".into();
        }
        assert_ne!(planned.hash, sealed(other_pod).hash);
    }
}
