-- Workflow runs (CNI install / rollback / remove; later drain, reset, recovery) and the
-- manifests they used. A run is a persisted state machine: its steps and the Kubernetes objects
-- it touched, with each object's snapshot taken before it was touched.

-- Every manifest used, by content (sha256 of the exact bytes).
CREATE TABLE manifests (
    sha256     TEXT PRIMARY KEY,
    content    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    source     TEXT NOT NULL,   -- catalog id, URL or upload:<file> of its first use
    added_at   TEXT NOT NULL
);

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster          TEXT NOT NULL,
    workflow         TEXT NOT NULL,
    params           TEXT NOT NULL,  -- JSON
    actor            TEXT NOT NULL,
    plan             TEXT NOT NULL,  -- JSON, as shown to the actor
    plan_hash        TEXT NOT NULL,
    title            TEXT NOT NULL,  -- the plan's title, e.g. "Calico v3.25.1"
    manifest_source  TEXT,           -- catalog id, URL or upload:<name>
    manifest_sha256  TEXT REFERENCES manifests (sha256),
    confirmation     TEXT NOT NULL,  -- JSON: what the actor typed, whether the password was asked
    status           TEXT NOT NULL CHECK (status IN
                       ('running', 'interrupted', 'succeeded', 'failed', 'cancelled', 'abandoned')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    error            TEXT,
    digest           TEXT            -- sha256 over the finished run, also in its audit record
);
-- One mutating run per cluster: a run that is running, or interrupted and not yet resumed or
-- abandoned, holds its cluster.
CREATE UNIQUE INDEX runs_one_active_per_cluster ON runs (cluster)
    WHERE status IN ('running', 'interrupted');
CREATE INDEX runs_by_cluster ON runs (cluster, id);

CREATE TABLE run_steps (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                  ('pending', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
    started_at  TEXT,
    finished_at TEXT,
    output      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE run_objects (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    seq         INTEGER NOT NULL,
    api_version TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT,
    name        TEXT NOT NULL,
    planned     TEXT NOT NULL CHECK (planned IN
                  ('create', 'update', 'unchanged', 'delete', 'restore', 'absent')),
    snapshot_taken INTEGER NOT NULL DEFAULT 0,
    before      TEXT,            -- the object before the run touched it (JSON); NULL: absent
    done        TEXT,            -- what the run did: applied, deleted, restored, recreated, skipped
    done_at     TEXT,
    PRIMARY KEY (run_id, seq)
);
