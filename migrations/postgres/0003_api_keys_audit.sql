CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE,
    -- The first characters of the key, safe to show: `ses_prod_Ab12`.
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    cidrs TEXT NOT NULL,
    rate_limit_per_minute BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    last_used_at BIGINT,
    last_used_from TEXT,
    revoked_at BIGINT,
    -- Set when rotated: the key keeps working until then.
    grace_until BIGINT,
    replaced_by TEXT
);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    caller TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
