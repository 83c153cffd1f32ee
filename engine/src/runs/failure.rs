//! Why a step failed, in words the pages translate. Each failure has a code and parameters
//! (stored with the failed run, shown in the reader's language) and its English text (the
//! fallback, the log, the audit record).

use super::RunId;

/// The code of every failure, for the pages' translations (a test checks each variant's).
pub const CODES: &[&str] = &[
    "step.rollout_timeout",
    "step.crds_not_established",
    "step.not_as_before",
    "step.not_in_manifest",
    "step.snapshot_sealed_elsewhere",
    "step.snapshot_unreadable",
    "step.drain_blocked",
    "step.drain_timeout",
    "step.apiserver_manifest_missing",
    "step.apiserver_not_running",
    "step.script_failed",
    "step.readyz_timeout",
    "step.readyz_timeout_no_rollback",
    "step.migration_refused",
];

/// A step's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// A CNI's DaemonSets, Deployments or nodes not ready in time.
    #[error("rollout not finished after {seconds} s: {missing}")]
    RolloutTimeout { seconds: u64, missing: String },
    /// A manifest's CRDs not Established in time.
    #[error("{what} after {seconds} s")]
    CrdsNotEstablished { what: String, seconds: u64 },
    /// A rollback's objects compared with their snapshots, and some differ.
    #[error("not as before the run: {differ}")]
    NotAsBefore { differ: String },
    /// A planned object missing from the run's manifest.
    #[error("{object} is not in the manifest")]
    NotInManifest { object: String },
    /// A Secret's snapshot sealed under another key than this server's.
    #[error(
        "the snapshot of {object} is a Secret sealed with another key than this server's (<database>.key): it cannot be restored"
    )]
    SnapshotSealedElsewhere { object: String },
    /// A snapshot that cannot be read (damaged).
    #[error("the snapshot of {object} cannot be read: {why}")]
    SnapshotUnreadable { object: String, why: String },
    /// Pods that `kubectl drain` would not remove (no controller without force, ...).
    #[error("{node}: {pods}; nothing was evicted")]
    DrainBlocked { node: String, pods: String },
    /// Pods still on the node when the drain's timeout came.
    #[error("drain of node {node} did not complete within {seconds} s: still there: {pods}")]
    DrainTimeout {
        node: String,
        seconds: u64,
        pods: String,
    },
    /// A recovery found no static-pod manifest to restart.
    #[error(
        "{node}: /etc/kubernetes/manifests/kube-apiserver.yaml is missing: the kubelet has no static pod to restart (`{script}` exited with {exit})"
    )]
    ApiserverManifestMissing {
        node: String,
        script: String,
        exit: String,
    },
    /// The kube-apiserver container does not run after the restart.
    #[error("{node}: the kube-apiserver container is not running (`{script}` exited with {exit})")]
    ApiserverNotRunning {
        node: String,
        script: String,
        exit: String,
    },
    /// A host script failed (a restart, a reset's step).
    #[error("{node}: `{script}` exited with {exit}")]
    ScriptFailed {
        node: String,
        script: String,
        exit: String,
    },
    /// The Tigera operator cannot take over the manifest install (its TigeraStatus `calico`
    /// Degraded with reason MigrationError).
    #[error("the Tigera operator cannot take over the manifest install: {message}")]
    MigrationRefused { message: String },
    /// The API server did not come back in time.
    #[error("/readyz did not answer ok within {seconds} s: {last}{}", not_started(*.rollback))]
    ReadyzTimeout {
        seconds: u64,
        last: String,
        /// The rollback that was to follow, and did not start.
        rollback: Option<RunId>,
    },
}

impl Failure {
    /// Why the snapshot `text` of `object` cannot be read as JSON.
    pub(crate) fn snapshot(object: String, text: &str, e: &serde_json::Error) -> Self {
        if crate::store::sealer::is_sealed(text) {
            Self::SnapshotSealedElsewhere { object }
        } else {
            Self::SnapshotUnreadable {
                object,
                why: e.to_string(),
            }
        }
    }
}

fn not_started(rollback: Option<RunId>) -> String {
    rollback
        .map(|t| format!(" (the rollback of run {t} was not started)"))
        .unwrap_or_default()
}

impl Failure {
    /// The code the pages translate, and its parameters (named as in the English text).
    #[must_use]
    pub fn code(&self) -> (&'static str, Vec<(&'static str, String)>) {
        let s = |v: &u64| v.to_string();
        match self {
            Self::RolloutTimeout { seconds, missing } => (
                "step.rollout_timeout",
                vec![("seconds", s(seconds)), ("missing", missing.clone())],
            ),
            Self::CrdsNotEstablished { what, seconds } => (
                "step.crds_not_established",
                vec![("what", what.clone()), ("seconds", s(seconds))],
            ),
            Self::NotAsBefore { differ } => {
                ("step.not_as_before", vec![("differ", differ.clone())])
            }
            Self::NotInManifest { object } => {
                ("step.not_in_manifest", vec![("object", object.clone())])
            }
            Self::SnapshotSealedElsewhere { object } => (
                "step.snapshot_sealed_elsewhere",
                vec![("object", object.clone())],
            ),
            Self::SnapshotUnreadable { object, why } => (
                "step.snapshot_unreadable",
                vec![("object", object.clone()), ("why", why.clone())],
            ),
            Self::DrainBlocked { node, pods } => (
                "step.drain_blocked",
                vec![("node", node.clone()), ("pods", pods.clone())],
            ),
            Self::DrainTimeout {
                node,
                seconds,
                pods,
            } => (
                "step.drain_timeout",
                vec![
                    ("node", node.clone()),
                    ("seconds", s(seconds)),
                    ("pods", pods.clone()),
                ],
            ),
            Self::ApiserverManifestMissing { node, script, exit }
            | Self::ApiserverNotRunning { node, script, exit }
            | Self::ScriptFailed { node, script, exit } => (
                match self {
                    Self::ApiserverManifestMissing { .. } => "step.apiserver_manifest_missing",
                    Self::ApiserverNotRunning { .. } => "step.apiserver_not_running",
                    _ => "step.script_failed",
                },
                vec![
                    ("node", node.clone()),
                    ("script", script.clone()),
                    ("exit", exit.clone()),
                ],
            ),
            Self::ReadyzTimeout {
                seconds,
                last,
                rollback,
            } => (
                if rollback.is_some() {
                    "step.readyz_timeout_no_rollback"
                } else {
                    "step.readyz_timeout"
                },
                vec![
                    ("seconds", s(seconds)),
                    ("last", last.clone()),
                    ("run", rollback.map(|r| r.to_string()).unwrap_or_default()),
                ],
            ),
            Self::MigrationRefused { message } => {
                ("step.migration_refused", vec![("message", message.clone())])
            }
        }
    }
}

/// How a host script's exit reads in a failure: its code, or that it gave none.
pub(crate) fn exit_text(exit: Option<u32>) -> String {
    exit.map_or_else(|| "no status".to_owned(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_a_listed_code() {
        let (s, n) = (String::new, || 1);
        let samples = [
            Failure::RolloutTimeout {
                seconds: n(),
                missing: s(),
            },
            Failure::CrdsNotEstablished {
                what: s(),
                seconds: n(),
            },
            Failure::NotAsBefore { differ: s() },
            Failure::NotInManifest { object: s() },
            Failure::SnapshotSealedElsewhere { object: s() },
            Failure::SnapshotUnreadable {
                object: s(),
                why: s(),
            },
            Failure::DrainBlocked {
                node: s(),
                pods: s(),
            },
            Failure::DrainTimeout {
                node: s(),
                seconds: n(),
                pods: s(),
            },
            Failure::ApiserverManifestMissing {
                node: s(),
                script: s(),
                exit: s(),
            },
            Failure::ApiserverNotRunning {
                node: s(),
                script: s(),
                exit: s(),
            },
            Failure::ScriptFailed {
                node: s(),
                script: s(),
                exit: s(),
            },
            Failure::ReadyzTimeout {
                seconds: n(),
                last: s(),
                rollback: None,
            },
            Failure::ReadyzTimeout {
                seconds: n(),
                last: s(),
                rollback: Some(RunId(1)),
            },
            Failure::MigrationRefused { message: s() },
        ];
        let codes: Vec<_> = samples.iter().map(|f| f.code().0).collect();
        assert_eq!(codes, CODES);
    }

    #[test]
    fn a_failure_names_its_parameters_as_its_english_text_shows_them() {
        let f = Failure::DrainTimeout {
            node: "rigel".into(),
            seconds: 6,
            pods: "demo/web-1".into(),
        };
        assert_eq!(
            f.to_string(),
            "drain of node rigel did not complete within 6 s: still there: demo/web-1"
        );
        let (code, params) = f.code();
        assert_eq!(code, "step.drain_timeout");
        assert_eq!(params[1], ("seconds", "6".to_owned()));
        let f = Failure::ReadyzTimeout {
            seconds: 180,
            last: "connection refused".into(),
            rollback: Some(RunId(4)),
        };
        assert!(
            f.to_string()
                .ends_with("(the rollback of run 4 was not started)")
        );
        assert_eq!(f.code().0, "step.readyz_timeout_no_rollback");
    }
}
