//! Grappe's engine: everything that touches the database, Kubernetes and SSH.
//!
//! No Leptos and no HTML here. The UI's server functions are thin adapters that check the
//! session and role, call into this crate, and map the result to a view type.
//!
//! - [`store`]: the SQLite database and all SQL.
//! - [`audit`]: the append-only, hash-chained audit log and the audit-first guard.
//! - [`auth`]: passwords, login throttling, login/logout records.
//! - [`users`]: accounts and roles; [`password`]: password hashing.
//! - [`clusters`]: configured clusters, kube clients and reachability.
//! - [`state`]: live cluster state from shared watches, and its views.
//! - [`diagnostics`]: rules that name known networking failures in that state.
//! - [`manifests`]: the CNI manifest catalog, downloads, checksums, parsing.
//! - [`model`]: ids, statuses and rows of runs, shared by the store and the services.
//! - [`runs`]: workflow runs as persisted state machines: a core and one folder per workflow.
//! - [`ssh`]: the node hosts over SSH: inventory, pinned host keys, fixed scripts, checks.
//! - [`net`]: IP prefixes.

pub mod audit;
pub mod auth;
pub mod bgp;
pub mod clusters;
pub mod csv_export;
pub mod diagnostics;
pub mod faults;
pub mod ipam;
pub mod manifests;
pub mod model;
pub mod mtu;
pub mod names;
pub mod net;
pub mod password;
pub mod runs;
pub mod ssh;
pub mod state;
pub mod store;
pub mod time;
pub mod users;

use std::path::PathBuf;

pub use audit::{AuditLog, Caller};
pub use auth::Authenticator;
pub use clusters::Clusters;
pub use store::Store;
pub use users::Users;

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub database: PathBuf,
    pub clusters: Vec<clusters::ClusterSpec>,
    pub throttle: auth::ThrottlePolicy,
    /// Base URL that replaces the upstream host of catalog manifests (air-gapped sites).
    pub manifest_mirror: Option<String>,
    /// Mark runs left "running" by a previous process as interrupted (the server does; the
    /// CLI, which may run beside a live server, does not).
    pub recover_runs: bool,
    /// How each cluster's node hosts are reached over SSH, by cluster name (none: no SSH).
    pub ssh: std::collections::BTreeMap<String, ssh::SshSpec>,
}

/// Errors while starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot prepare authentication")]
    Auth(#[from] auth::AuthError),
    #[error("cannot prepare workflow runs")]
    Runs(#[source] Box<runs::RunError>),
    #[error("cannot prepare the HTTP client for manifests")]
    Http(#[from] reqwest::Error),
}

/// The engine's services, shared by every request. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    pub store: Store,
    pub audit: AuditLog,
    pub auth: Authenticator,
    pub users: Users,
    pub clusters: Clusters,
    /// Live state of every cluster (watches started with the engine).
    pub states: state::ClusterStates,
    /// Workflow runs.
    pub runs: runs::Runs,
    /// SSH to node hosts.
    pub ssh: ssh::Ssh,
}

impl Engine {
    /// Opens the database (running migrations) and prepares the services.
    ///
    /// # Errors
    /// [`EngineError`] when the database cannot be opened or migrated.
    pub async fn start(config: EngineConfig) -> Result<Self, EngineError> {
        let store = Store::open(&config.database).await?;
        let audit = AuditLog::new(store.clone());
        let auth = Authenticator::new(store.clone(), audit.clone(), config.throttle).await?;
        let users = Users::new(store.clone(), audit.clone());
        let clusters = Clusters::new(config.clusters);
        let states = state::ClusterStates::start(&clusters);
        let ssh = ssh::Ssh::new(config.ssh, store.clone(), audit.clone());
        let runs = runs::Runs::open(
            runs::RunServices {
                store: store.clone(),
                audit: audit.clone(),
                clusters: clusters.clone(),
                states: states.clone(),
                fetcher: manifests::Fetcher::new(config.manifest_mirror)?,
                ssh: ssh.clone(),
                registry: runs::kinds::registry(),
            },
            &config.database,
            config.recover_runs,
        )
        .await
        .map_err(|e| EngineError::Runs(Box::new(e)))?;
        runs::recover::remember_control_planes(runs.clone(), clusters.names().to_vec());
        Ok(Self {
            states,
            runs,
            ssh,
            clusters,
            store,
            audit,
            auth,
            users,
        })
    }
}
