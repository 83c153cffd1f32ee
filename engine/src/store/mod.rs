//! The SQLite store: opening the database file, running the embedded migrations, and every SQL
//! statement Grappe issues (one submodule per table family). Nothing outside this module writes
//! SQL.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a committed transaction
//! (an audit record in particular) survives a power loss. Grappe's write rate is that of people
//! clicking buttons, so the extra fsync per commit costs nothing that matters.

pub mod audit;
pub mod hosts;
pub mod runs;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file or its directory could not be created or opened.
    #[error("cannot open the database at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An embedded migration failed; the server must not start on a half-migrated schema.
    #[error("database migration failed")]
    Migrate(#[source] MigrateError),
    /// A statement failed.
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// A row holds a value the code does not know (e.g. a role outside the CHECK list).
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

/// A handle on the SQLite database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing) the database file at `path`, and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened, [`StoreError::Migrate`] when a
    /// migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let store = Self::connect(path).await?;
        MIGRATOR
            .run(&store.pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(store)
    }

    /// Opens the database without running migrations (for tools that must not change it).
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened.
    pub async fn connect(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(Box::new(e)))?;
        }
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| open_err(Box::new(e)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| open_err(Box::new(e)))?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }

    /// The connection pool, for the session store which brings its own SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A cheap query that proves the database answers (used by the health endpoint).
    ///
    /// # Errors
    /// [`StoreError::Query`] when the database does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish (WAL checkpoint on close).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
