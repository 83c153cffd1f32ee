-- A migration to the Tigera operator plans objects Grappe does not apply itself: 'move' (the
-- operator deletes it once its own copy runs in calico-system) and 'handover' (the operator
-- rewrites it under the same name). SQLite cannot change a CHECK constraint: the table is
-- rebuilt with the wider one, rows kept as they are.
CREATE TABLE run_objects_new (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    seq         INTEGER NOT NULL,
    api_version TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT,
    name        TEXT NOT NULL,
    planned     TEXT NOT NULL CHECK (planned IN
                  ('create', 'update', 'unchanged', 'delete', 'restore', 'absent',
                   'move', 'handover')),
    snapshot_taken INTEGER NOT NULL DEFAULT 0,
    before      TEXT,            -- the object before the run touched it (JSON); NULL: absent
    done        TEXT,            -- what the run did: applied, deleted, restored, recreated, skipped
    done_at     TEXT,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO run_objects_new
    (run_id, seq, api_version, kind, namespace, name, planned, snapshot_taken, before, done, done_at)
    SELECT run_id, seq, api_version, kind, namespace, name, planned, snapshot_taken, before, done, done_at
    FROM run_objects;
DROP TABLE run_objects;
ALTER TABLE run_objects_new RENAME TO run_objects;
