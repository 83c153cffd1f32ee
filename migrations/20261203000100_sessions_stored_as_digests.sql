-- Sessions are now stored under a digest of their id (server/src/http/session_store.rs); the
-- ones stored under the raw id before this would never be found again: end them.
DELETE FROM user_sessions;
DELETE FROM sessions;
