-- Each IP pool's use, sampled every few minutes by the server, for the exhaustion forecast of
-- the IPAM page; kept 90 days (older samples are deleted as new ones come).
CREATE TABLE ipam_samples (
    cluster    TEXT NOT NULL,
    pool       TEXT NOT NULL,
    at         INTEGER NOT NULL,  -- unix seconds
    allocated  INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (cluster, pool, at)
);
CREATE INDEX ipam_samples_by_time ON ipam_samples (at);
