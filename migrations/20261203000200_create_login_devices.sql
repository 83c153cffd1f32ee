-- Browsers that signed in successfully (OWASP's "device cookies"): a login presenting one is
-- throttled on its own, so that strangers guessing an account's password do not lock its owner
-- out. Only a digest of the cookie's token is stored.
CREATE TABLE login_devices (
    digest     TEXT PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_us INTEGER NOT NULL
) STRICT;
CREATE INDEX login_devices_by_user ON login_devices (user_id, created_us);
