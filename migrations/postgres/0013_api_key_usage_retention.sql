-- API-key usage per key per minute, flushed from the ephemeral counters (no write per check).
-- `minute` is the unix time of the minute's start.
CREATE TABLE api_key_usage (
    key_id TEXT NOT NULL,
    minute BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    rate_limited BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    PRIMARY KEY (key_id, minute)
);
CREATE INDEX api_key_usage_minute ON api_key_usage (minute);
-- Retention prunes and exports by time.
CREATE INDEX audit_events_at ON audit_events (at);
