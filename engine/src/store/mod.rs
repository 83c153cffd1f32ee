//! The SQLite store: opening the database file, running the embedded migrations, and every SQL
//! statement Grappe issues (one submodule per table family). Nothing outside this module writes
//! SQL.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a committed transaction
//! (an audit record in particular) survives a power loss. Grappe's write rate is that of people
//! clicking buttons, so the extra fsync per commit costs nothing that matters.

pub mod audit;
pub mod hosts;
pub mod ipam;
pub mod runs;
pub mod sealer;
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
    /// The database file can be read by other users of the machine: it holds password hashes,
    /// the audit log and sessions.
    #[error(
        "the database {path} can be read or written by other users (mode {mode:o}); \
         make it private (chmod 600 {path}*) and start again"
    )]
    Exposed { path: PathBuf, mode: u32 },
    /// A row holds a value the code does not know (e.g. a role outside the CHECK list).
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

enum Private {
    Io(std::io::Error),
    Exposed(PathBuf, u32),
}

/// Creates the database's directory (0700) and file (0600) when missing, so that SQLite's WAL
/// and shared-memory files, which take the file's mode, are private too; refuses an existing
/// file (or WAL file) that other users may read or write.
fn private_files(path: &Path) -> Result<(), Private> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(Private::Io)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Private::Io(e)),
    }
    let mut with_wal = path.as_os_str().to_owned();
    with_wal.push("-wal");
    for file in [path.to_owned(), PathBuf::from(with_wal)] {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                return Err(Private::Exposed(file, meta.permissions().mode() & 0o777));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Private::Io(e)),
        }
    }
    Ok(())
}

/// A handle on the SQLite database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    sealer: sealer::Sealer,
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
        private_files(path).map_err(|e| match e {
            Private::Io(e) => open_err(Box::new(e)),
            Private::Exposed(path, mode) => StoreError::Exposed { path, mode },
        })?;
        let sealer = sealer::Sealer::load_or_create(&sealer::key_path(path))
            .map_err(|e| open_err(Box::new(e)))?;
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
            // A connection still inside a transaction when it comes back (a COMMIT refused by
            // a full disk, its rollback not done yet) is closed, not reused: every later BEGIN
            // on it would fail, and the audit log with it, long after the disk has room again.
            .after_release(|conn, _| {
                let depth =
                    <<sqlx::Sqlite as sqlx::Database>::TransactionManager as sqlx::TransactionManager>::get_transaction_depth(
                        conn,
                    );
                Box::pin(async move { Ok(depth == 0) })
            })
            .connect_with(options)
            .await
            .map_err(|e| open_err(Box::new(e)))?;
        Ok(Self {
            pool,
            path: path.to_owned(),
            sealer,
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

/// What unit tests elsewhere in the engine need to make rows.
#[cfg(test)]
pub(crate) mod testing {
    use super::runs::{NewRun, NewRunObject};

    /// A running `cni.install` run on cluster `lab` by `alice`, one `snapshot` step.
    pub(crate) fn run(objects: &[NewRunObject]) -> NewRun<'_> {
        NewRun {
            cluster: "lab",
            workflow: "cni.install",
            params: "{}",
            actor: "alice",
            plan: "{}",
            plan_hash: "h",
            title: "t",
            manifest_source: None,
            manifest_sha256: None,
            confirmation: "{}",
            steps: std::slice::from_ref(snapshot_step()),
            objects,
        }
    }

    fn snapshot_step() -> &'static String {
        static STEP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        STEP.get_or_init(|| "snapshot".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[tokio::test]
    async fn the_database_is_private_and_an_exposed_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/grappe.db");
        let store = Store::open(&path).await.expect("open");
        store.ping().await.expect("ping");
        assert_eq!(mode(dir.path().join("data").as_path()), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(dir.path().join("data/grappe.db-wal").as_path()), 0o600);
        store.close().await;

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = Store::open(&path)
            .await
            .expect_err("an exposed database is refused");
        assert!(
            matches!(err, StoreError::Exposed { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[tokio::test]
    async fn a_secret_snapshot_is_stored_sealed_and_read_back_open() {
        use super::runs::NewRunObject;
        use super::sealer::key_path;
        use grappe_views::runs::Planned;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("grappe.db");
        let store = Store::open(&db).await.expect("open");
        let object = |kind: &str| NewRunObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("kube-system".into()),
            name: "calico-config".into(),
            planned: Planned::Update,
        };
        let objects = [object("Secret"), object("ConfigMap")];
        let id = store
            .insert_run(&testing::run(&objects))
            .await
            .expect("insert")
            .expect("run");
        let secret = r#"{"kind":"Secret","data":{"token":"c2VjcmV0LXRva2Vu"}}"#;
        let config = r#"{"kind":"ConfigMap","data":{"mtu":"1440"}}"#;
        store
            .set_object_snapshot(id, 0, Some(secret))
            .await
            .expect("snapshot");
        store
            .set_object_snapshot(id, 1, Some(config))
            .await
            .expect("snapshot");
        let raw: Vec<String> =
            sqlx::query_scalar("SELECT before FROM run_objects WHERE run_id = ?1 ORDER BY seq")
                .bind(id.0)
                .fetch_all(store.pool())
                .await
                .expect("raw");
        assert!(
            sealer::is_sealed(&raw[0]) && !raw[0].contains("c2VjcmV0"),
            "{}",
            raw[0]
        );
        assert_eq!(raw[1], config, "other objects are stored as they are");
        let rows = store.run_objects(id).await.expect("rows");
        assert_eq!(rows[0].before.as_deref(), Some(secret));
        assert_eq!(rows[1].before.as_deref(), Some(config));
        store.close().await;

        // Another key: the snapshot stays sealed (never read as "did not exist").
        std::fs::remove_file(key_path(&db)).expect("rm key");
        let store = Store::open(&db).await.expect("open");
        let rows = store.run_objects(id).await.expect("rows");
        assert_eq!(rows[0].before.as_deref(), Some(raw[0].as_str()));
    }
}
