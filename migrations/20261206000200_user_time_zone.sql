-- The time zone a user reads exact times in (an IANA name such as Europe/Paris); NULL: the
-- browser's own. Only what the pages show changes: the audit log and the exports keep UTC.
ALTER TABLE users ADD COLUMN time_zone TEXT;
