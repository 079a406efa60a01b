-- API keys: only the SHA-256 of a key is stored; the key itself is shown once, at creation.
-- territories: JSON list of territory codes the key is limited to ([] = national).
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'facilitator', 'partner')),
    territories TEXT NOT NULL DEFAULT '[]',
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

-- One row per successful write through the API: who (key), what route, which entity.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    key_id TEXT,
    key_name TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    path TEXT NOT NULL,
    entity_id TEXT,
    status INTEGER NOT NULL,
    request_id TEXT
);
CREATE INDEX audit_log_by_time ON audit_log(at);
