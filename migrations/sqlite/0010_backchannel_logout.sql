-- OpenID Connect Back-Channel Logout: where a client hears that a session ended, and the durable
-- outbox of logout tokens still to deliver (any node delivers; a crash loses none).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;

CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A node that claimed the delivery owns it until then; after, another may take it over.
    lease_until INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    given_up_at INTEGER,
    last_error TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX logout_deliveries_settled ON logout_deliveries (created_at);
