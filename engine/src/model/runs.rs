//! Workflow runs' ids, statuses and the rows of `runs`, `run_steps` and `run_objects`, read
//! by `sqlx::FromRow` (the vocabulary's words through `TryFrom<String>`: an unknown word is a
//! decoding error naming it).

use grappe_views::runs::Planned;
use serde::{Deserialize, Serialize};

use crate::names::ClusterName;

/// A run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl From<i64> for RunId {
    fn from(id: i64) -> Self {
        Self(id)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub use grappe_views::vocab::{RunStatus, StepStatus, Workflow};

/// The run that holds a cluster.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveRun {
    #[sqlx(try_from = "i64")]
    pub id: RunId,
    pub actor: String,
    #[sqlx(try_from = "String")]
    pub workflow: Workflow,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
}

/// A run row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    #[sqlx(try_from = "i64")]
    pub id: RunId,
    #[sqlx(try_from = "String")]
    pub cluster: ClusterName,
    #[sqlx(try_from = "String")]
    pub workflow: Workflow,
    pub params: String,
    pub actor: String,
    pub plan: String,
    pub plan_hash: String,
    pub title: String,
    pub manifest_source: Option<String>,
    pub manifest_sha256: Option<String>,
    pub confirmation: String,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub cancel_requested: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// The error's code and parameters (a JSON object), for the pages to translate.
    pub error_code: Option<String>,
    pub error_params: Option<String>,
    pub digest: Option<String>,
    #[sqlx(json)]
    pub warnings: Vec<String>,
}

/// Why a run ended without success: the English text, and the code and parameters that
/// the pages translate when the failure has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    pub text: String,
    pub code: Option<(&'static str, Vec<(&'static str, String)>)>,
}

impl RunFailure {
    /// The parameters as stored: a JSON object of texts.
    pub fn params_json(&self) -> Option<String> {
        self.code.as_ref().map(|(_, params)| {
            let map: serde_json::Map<String, serde_json::Value> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::Value::Object(map).to_string()
        })
    }
}

/// A step row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepRow {
    pub idx: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: String,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub progress_unit: Option<String>,
    pub progress_note: Option<String>,
    pub progress_updated: Option<i64>,
    pub progress_updated_total: Option<i64>,
}

/// An object row (`before` as stored: a Secret's snapshot sealed until the store opens it).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ObjectRow {
    pub seq: i64,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub planned: Planned,
    pub snapshot_taken: bool,
    pub before: Option<String>,
    pub done: Option<String>,
    pub done_at: Option<String>,
}
