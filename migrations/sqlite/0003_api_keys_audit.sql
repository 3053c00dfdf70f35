CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    -- The first characters of the key, safe to show: `ses_prod_Ab12`.
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    cidrs TEXT NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    last_used_at INTEGER,
    last_used_from TEXT,
    revoked_at INTEGER,
    -- Set when rotated: the key keeps working until then.
    grace_until INTEGER,
    replaced_by TEXT
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    caller TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
