//! The audit log's vocabulary that the store and the audit service share: record ids, actions,
//! outcomes, stored records with their hash, and filters.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// Primary key of an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditId(pub i64);

impl From<i64> for AuditId {
    fn from(id: i64) -> Self {
        Self(id)
    }
}

grappe_views::vocabulary!(
    /// What came of an action.
    Outcome {
        /// Written before a guarded action runs.
        Attempted => "attempted",
        Success => "success",
        Failure => "failure",
        /// Refused by an authorization or safety check.
        Denied => "denied",
    }
);

/// The audited actions. Stored as their dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Login,
    Logout,
    UserAdd,
    UserDisable,
    UserEnable,
    UserRoleChange,
    UserPasswordChange,
    RunStart,
    RunStep,
    RunFinish,
    RunCancel,
    RunResume,
    RunAbandon,
    ManifestRefused,
    NodeCordon,
    NodeUncordon,
    NodeCheck,
    SshTrust,
    RunApprove,
    RunInterrupt,
    NodeMtuProbe,
    NodeBgpSessions,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Self::Login,
        Self::Logout,
        Self::UserAdd,
        Self::UserDisable,
        Self::UserEnable,
        Self::UserRoleChange,
        Self::UserPasswordChange,
        Self::RunStart,
        Self::RunStep,
        Self::RunFinish,
        Self::RunCancel,
        Self::RunResume,
        Self::RunAbandon,
        Self::ManifestRefused,
        Self::NodeCordon,
        Self::NodeUncordon,
        Self::NodeCheck,
        Self::SshTrust,
        Self::RunApprove,
        Self::RunInterrupt,
        Self::NodeMtuProbe,
        Self::NodeBgpSessions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "auth.login",
            Self::Logout => "auth.logout",
            Self::UserAdd => "user.add",
            Self::UserDisable => "user.disable",
            Self::UserEnable => "user.enable",
            Self::UserRoleChange => "user.role_change",
            Self::UserPasswordChange => "user.password_change",
            Self::RunStart => "run.start",
            Self::RunStep => "run.step",
            Self::RunFinish => "run.finish",
            Self::RunCancel => "run.cancel",
            Self::RunResume => "run.resume",
            Self::RunAbandon => "run.abandon",
            Self::ManifestRefused => "manifest.refused",
            Self::NodeCordon => "node.cordon",
            Self::NodeUncordon => "node.uncordon",
            Self::NodeCheck => "node.check",
            Self::SshTrust => "ssh.trust",
            Self::RunApprove => "run.approve",
            Self::RunInterrupt => "run.interrupt",
            Self::NodeMtuProbe => "node.mtu-probe",
            Self::NodeBgpSessions => "node.bgp-sessions",
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    #[sqlx(try_from = "i64")]
    pub id: AuditId,
    #[sqlx(try_from = "String")]
    pub at: Timestamp,
    /// `at` exactly as stored (what the hash covers).
    #[serde(skip)]
    #[sqlx(rename = "at")]
    pub at_raw: String,
    pub actor: String,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub cluster: Option<String>,
    pub node: Option<String>,
    pub object: Option<String>,
    /// Canonical JSON text (keys sorted).
    pub details: String,
    #[sqlx(try_from = "String")]
    pub outcome: Outcome,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record should carry, from its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"grappe-audit-v1\n");
        let mut field = |value: Option<&str>| match value {
            None => h.update(b"N;"),
            Some(v) => {
                h.update(format!("S{}:", v.len()).as_bytes());
                h.update(v.as_bytes());
                h.update(b";");
            }
        };
        let id = self.id.0.to_string();
        field(Some(&id));
        field(Some(&self.at_raw));
        field(Some(&self.actor));
        field(self.source.as_deref());
        field(self.user_agent.as_deref());
        field(Some(&self.action));
        field(self.cluster.as_deref());
        field(self.node.as_deref());
        field(self.object.as_deref());
        field(Some(&self.details));
        field(Some(self.outcome.as_str()));
        field(Some(&self.prev_hash));
        hex::encode(h.finalize())
    }
}

/// Filters for the history view and exports. `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
}
