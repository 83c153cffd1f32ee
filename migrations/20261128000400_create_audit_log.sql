-- The append-only, hash-chained audit log. Each row's hash is SHA-256 over a canonical encoding of
-- its fields and the previous row's hash (see engine/src/audit.rs). AUTOINCREMENT keeps
-- sqlite_sequence, which lets the verifier notice rows deleted from the end of the chain.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    source     TEXT,
    user_agent TEXT,
    action     TEXT NOT NULL,
    cluster    TEXT,
    node       TEXT,
    object     TEXT,
    details    TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('attempted', 'success', 'failure', 'denied')),
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_at ON audit_log (at);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_action ON audit_log (action, id);
CREATE INDEX audit_log_by_cluster ON audit_log (cluster, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
