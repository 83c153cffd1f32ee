//! The audit log: append-only, hash-chained, written before the action it describes.
//!
//! Each record stores the hash of the previous one; its own hash is SHA-256 over a canonical,
//! length-prefixed encoding of all its fields (id included, so moving rows is detected). The
//! database refuses UPDATE and DELETE (triggers), writes are serialized (one writer at a time in
//! this process, `BEGIN IMMEDIATE` across processes), and [`AuditLog::verify`] walks the chain and
//! names the first record that was altered or is missing.
//!
//! Destructive actions go through [`AuditLog::guarded`]: it writes the "attempted" record first
//! and only then runs the action; if the record cannot be written, the action never runs.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use crate::model::audit::{Action, AuditFilter, AuditId, AuditRecord, Outcome};
use crate::store::audit::AuditColumn;
use crate::store::{Store, StoreError};
use crate::time::now;

/// The hash the first record points back to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The record could not be written (or read): the action it guards must not run.
    #[error("the audit log cannot be written")]
    Store(#[from] StoreError),
    /// The details could not be encoded as JSON.
    #[error("audit details cannot be encoded")]
    Encode(#[source] serde_json::Error),
}

/// The result of a guarded action.
#[derive(Debug, thiserror::Error)]
pub enum GuardedError<E: std::error::Error + 'static> {
    /// The "attempted" record could not be written, so the action was not run.
    #[error("refused: the audit record could not be written, so nothing was done")]
    AuditUnavailable(#[source] AuditError),
    /// The action ran and failed (its failure is recorded).
    #[error(transparent)]
    Action(E),
}

/// Who asked, and from where. Built by the server from the request, or by the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// A user name, `cli:<os user>` for the command line, or `anonymous`.
    pub actor: String,
    /// Source address (IP) of the request.
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// The command line on this machine, acting as the OS user `os_user`.
    /// Grappe itself, acting at startup on what a previous process left.
    pub fn system() -> Self {
        Self {
            actor: "grappe".to_owned(),
            source: Some("local".to_owned()),
            user_agent: Some(format!("grappe/{}", env!("CARGO_PKG_VERSION"))),
        }
    }

    pub fn cli(os_user: &str) -> Self {
        Self {
            actor: format!("cli:{}", crate::names::sanitize_for_display(os_user, 64)),
            source: Some("local".to_owned()),
            user_agent: Some(format!("grappe-cli/{}", env!("CARGO_PKG_VERSION"))),
        }
    }
}

/// The object an action is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub cluster: Option<String>,
    pub node: Option<String>,
    /// `kind/namespace/name`, a user name, or another object reference.
    pub object: Option<String>,
}

impl Target {
    pub fn object(object: impl Into<String>) -> Self {
        Self {
            object: Some(object.into()),
            ..Self::default()
        }
    }
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub caller: Caller,
    pub action: Action,
    pub target: Target,
    pub details: serde_json::Value,
    pub outcome: Outcome,
}

impl AuditEntry {
    pub fn new(caller: &Caller, action: Action, target: Target, outcome: Outcome) -> Self {
        Self {
            caller: caller.clone(),
            action,
            target,
            details: serde_json::Value::Object(serde_json::Map::new()),
            outcome,
        }
    }

    /// Adds `key: value` to the details object.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let serde_json::Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// One page of the history.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// What the verifier found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VerifyReport {
    /// Every record is present and unaltered.
    Intact { records: i64, head: Option<String> },
    /// The chain is broken at `id`.
    Broken { id: i64, problem: ChainProblem },
}

/// How the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ChainProblem {
    /// The record is not there (ids are contiguous).
    Missing,
    /// The record's content does not match its hash.
    Altered,
    /// The record does not point to its predecessor's hash (a predecessor was replaced).
    Unlinked,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Intact { records, head } => write!(
                f,
                "audit log intact: {records} records, head {}",
                head.as_deref().unwrap_or("(empty)")
            ),
            Self::Broken { id, problem } => match problem {
                ChainProblem::Missing => write!(f, "audit log broken: record {id} is missing"),
                ChainProblem::Altered => write!(f, "audit log broken: record {id} was altered"),
                ChainProblem::Unlinked => write!(
                    f,
                    "audit log broken: record {id} does not link to record {} (altered or replaced)",
                    id - 1
                ),
            },
        }
    }
}

/// The audit log. Cheap to clone; all clones share the writer lock.
#[derive(Clone, Debug)]
pub struct AuditLog {
    store: Store,
    writer: Arc<Mutex<()>>,
}

impl AuditLog {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            writer: Arc::new(Mutex::new(())),
        }
    }

    /// Appends one record and returns its id once it is committed (synchronous=FULL).
    ///
    /// # Errors
    /// [`AuditError`] when the record cannot be encoded or written.
    #[tracing::instrument(name = "audit.append", skip_all, fields(action = entry.action.as_str()))]
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditId, AuditError> {
        // serde_json's Map is a BTreeMap here, so keys come out sorted: a canonical text.
        let details = serde_json::to_string(&entry.details).map_err(AuditError::Encode)?;
        let _one_writer = self.writer.lock().await;
        let mut tx = self
            .store
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from)?;
        let head = Store::audit_chain_head(&mut tx).await?;
        let at = now();
        let mut record = AuditRecord {
            id: AuditId(head.next_id),
            at,
            at_raw: at.to_string(),
            actor: entry.caller.actor,
            source: entry.caller.source,
            user_agent: entry.caller.user_agent,
            action: entry.action.as_str().to_owned(),
            cluster: entry.target.cluster,
            node: entry.target.node,
            object: entry.target.object,
            details,
            outcome: entry.outcome,
            prev_hash: head.last_hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        Store::insert_audit_record(&mut tx, &record).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(record.id)
    }

    /// Writes an "attempted" record, then runs `action`, then records its outcome.
    ///
    /// The action is a future, and futures do nothing until polled: if the first record cannot be
    /// written, `action` is dropped without ever running.
    ///
    /// # Errors
    /// [`GuardedError::AuditUnavailable`] when the first record cannot be written (nothing was
    /// done), [`GuardedError::Action`] when the action failed.
    pub async fn guarded<T, E, F>(&self, entry: AuditEntry, action: F) -> Result<T, GuardedError<E>>
    where
        F: Future<Output = Result<T, E>>,
        E: std::error::Error + 'static,
    {
        let mut attempted = entry.clone();
        attempted.outcome = Outcome::Attempted;
        let intent = self
            .append(attempted)
            .await
            .map_err(GuardedError::AuditUnavailable)?;
        let result = action.await;
        let mut done = entry.detail("attempt", intent.0);
        match &result {
            Ok(_) => done.outcome = Outcome::Success,
            Err(e) => {
                done.outcome = Outcome::Failure;
                done = done.detail("error", error_chain(e));
            }
        }
        if let Err(e) = self.append(done).await {
            // The action already happened; its "attempted" record stands. Say so loudly.
            tracing::error!(error = %error_chain(&e), attempt = intent.0, "could not record the outcome of an audited action");
        }
        result.map_err(GuardedError::Action)
    }

    /// Walks the whole chain, oldest first.
    ///
    /// # Errors
    /// [`AuditError::Store`] when the log cannot be read.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        const BATCH: i64 = 1_000;
        let mut expected_id = 1;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut count = 0;
        loop {
            let batch = self
                .store
                .audit_records_after(expected_id - 1, BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            for record in &batch {
                if record.id.0 != expected_id {
                    return Ok(VerifyReport::Broken {
                        id: expected_id,
                        problem: ChainProblem::Missing,
                    });
                }
                if record.compute_hash() != record.hash {
                    return Ok(VerifyReport::Broken {
                        id: record.id.0,
                        problem: ChainProblem::Altered,
                    });
                }
                if record.prev_hash != prev_hash {
                    return Ok(VerifyReport::Broken {
                        id: record.id.0,
                        problem: ChainProblem::Unlinked,
                    });
                }
                prev_hash.clone_from(&record.hash);
                expected_id += 1;
                count += 1;
            }
        }
        let sequence = self.store.audit_sequence().await?;
        if sequence >= expected_id {
            return Ok(VerifyReport::Broken {
                id: expected_id,
                problem: ChainProblem::Missing,
            });
        }
        Ok(VerifyReport::Intact {
            records: count,
            head: (count > 0).then_some(prev_hash),
        })
    }

    /// One page of records matching `filter`, newest first. `page` starts at 1.
    ///
    /// # Errors
    /// [`AuditError::Store`] when the log cannot be read.
    pub async fn page(
        &self,
        filter: &AuditFilter,
        page: i64,
        per_page: i64,
    ) -> Result<AuditPage, AuditError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, 500);
        let (records, total) = self
            .store
            .audit_page(filter, (page - 1) * per_page, per_page)
            .await?;
        Ok(AuditPage {
            records,
            total,
            page,
            per_page,
        })
    }

    /// Every record matching `filter`, newest first, up to `limit`.
    ///
    /// # Errors
    /// [`AuditError::Store`] when the log cannot be read.
    pub async fn export(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        Ok(self.store.audit_page(filter, 0, limit).await?.0)
    }

    /// The values present for the filter menus (actors, actions, clusters).
    ///
    /// # Errors
    /// [`AuditError::Store`] when the log cannot be read.
    pub async fn filter_values(&self) -> Result<FilterValues, AuditError> {
        Ok(FilterValues {
            actors: self.store.audit_distinct(AuditColumn::Actor).await?,
            actions: self.store.audit_distinct(AuditColumn::Action).await?,
            clusters: self.store.audit_distinct(AuditColumn::Cluster).await?,
        })
    }
}

/// Values present in the log, for filter menus.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterValues {
    pub actors: Vec<String>,
    pub actions: Vec<String>,
    pub clusters: Vec<String>,
}

/// Renders an error with its whole `source()` chain: `outer: inner: root`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Writes records as CSV (header row first).
///
/// # Errors
/// The CSV writer's error (only I/O of `out`).
pub fn write_csv<W: std::io::Write>(records: &[AuditRecord], out: W) -> Result<(), csv::Error> {
    let header = [
        "id",
        "at",
        "actor",
        "source",
        "user_agent",
        "action",
        "cluster",
        "node",
        "object",
        "details",
        "outcome",
        "prev_hash",
        "hash",
    ];
    let rows = records.iter().map(|r| {
        [
            r.id.0.to_string(),
            r.at_raw.clone(),
            r.actor.clone(),
            r.source.clone().unwrap_or_default(),
            r.user_agent.clone().unwrap_or_default(),
            r.action.clone(),
            r.cluster.clone().unwrap_or_default(),
            r.node.clone().unwrap_or_default(),
            r.object.clone().unwrap_or_default(),
            r.details.clone(),
            r.outcome.as_str().to_owned(),
            r.prev_hash.clone(),
            r.hash.clone(),
        ]
    });
    crate::csv_export::write(out, &header, rows)
}
