//! Workflow runs' ids, statuses and the rows of `runs`, `run_steps` and `run_objects`.

use grappe_views::runs::Planned;
use serde::{Deserialize, Serialize};

/// A run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub use grappe_views::vocab::{RunStatus, StepStatus, Workflow};

/// The run that holds a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRun {
    pub id: RunId,
    pub actor: String,
    pub workflow: Workflow,
    pub status: RunStatus,
}

/// A run row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: RunId,
    pub cluster: String,
    pub workflow: Workflow,
    pub params: String,
    pub actor: String,
    pub plan: String,
    pub plan_hash: String,
    pub title: String,
    pub manifest_source: Option<String>,
    pub manifest_sha256: Option<String>,
    pub confirmation: String,
    pub status: RunStatus,
    pub cancel_requested: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub digest: Option<String>,
    pub warnings: Vec<String>,
}

/// A step row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub idx: i64,
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: String,
}

/// An object row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub seq: i64,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub planned: Planned,
    pub snapshot_taken: bool,
    pub before: Option<String>,
    pub done: Option<String>,
    pub done_at: Option<String>,
}
