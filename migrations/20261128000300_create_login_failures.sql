-- Failed logins, per account name and per source address. Persisted so throttling survives restarts.
CREATE TABLE login_failures (
    id    INTEGER PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    key   TEXT NOT NULL,
    at_us INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_by_key ON login_failures (scope, key, at_us);
