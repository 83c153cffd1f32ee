-- tower-sessions' table (same shape as tower-sessions-sqlx-store creates), kept here so that the
-- whole schema lives in migrations/.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);

-- Which user a session belongs to, so that disabling a user ends all of that user's sessions.
CREATE TABLE user_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
