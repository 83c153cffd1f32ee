-- SSH to node hosts: pinned host keys (one per node; an admin's explicit, audited trust) and the
-- results of read-only host checks (kept with the node's history).

CREATE TABLE ssh_host_keys (
    cluster     TEXT NOT NULL,
    node        TEXT NOT NULL,
    address     TEXT NOT NULL,   -- where the key was seen when it was trusted
    key         TEXT NOT NULL,   -- OpenSSH one-line public key, without comment
    fingerprint TEXT NOT NULL,   -- SHA256:...
    trusted_by  TEXT NOT NULL,
    trusted_at  TEXT NOT NULL,
    PRIMARY KEY (cluster, node)
);

CREATE TABLE host_checks (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster  TEXT NOT NULL,
    node     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       TEXT NOT NULL,
    result   TEXT NOT NULL       -- JSON (HostCheckView)
);
CREATE INDEX host_checks_by_node ON host_checks (cluster, node, id);

-- Warnings of a run (kubeadm's, for a node reset): a succeeded run with warnings is shown as
-- "completed with warnings". JSON list of strings.
ALTER TABLE runs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';

-- Approvals of runs under the two-person rule (node resets): a second admin, never the actor.
CREATE TABLE run_approvals (
    run_id  INTEGER NOT NULL REFERENCES runs (id),
    actor   TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (run_id, actor)
);
