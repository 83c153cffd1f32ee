-- The control-plane nodes of each cluster as last seen (name and InternalIP), so that a Grappe
-- started while the API server is down still knows which hosts to recover.
CREATE TABLE known_control_planes (
    cluster     TEXT NOT NULL,
    node        TEXT NOT NULL,
    internal_ip TEXT,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (cluster, node)
);
