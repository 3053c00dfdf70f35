-- API-key usage per key per minute, flushed from the ephemeral counters (no write per check).
-- `minute` is the unix time of the minute's start.
CREATE TABLE api_key_usage (
    key_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    rate_limited INTEGER NOT NULL,
    denied INTEGER NOT NULL,
    PRIMARY KEY (key_id, minute)
);
CREATE INDEX api_key_usage_minute ON api_key_usage (minute);
-- Retention prunes and exports by time.
CREATE INDEX audit_events_at ON audit_events (at);
