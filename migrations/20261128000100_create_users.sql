-- Local Grappe accounts. Passwords are argon2id PHC strings; roles are checked by the database too.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    lang          TEXT NOT NULL DEFAULT 'en' CHECK (lang IN ('en', 'fr')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
