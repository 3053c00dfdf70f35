-- The registry of SSO sessions. The live session is in the ephemeral store (the hot path); this
-- row is its durable record: who, since when, how, from where, which clients got tokens in it,
-- and whether it was ended. A session is live only while its row says so (ended_at IS NULL), so
-- any node or the CLI can end a session another node created, at once.
CREATE TABLE sso_sessions (
    sid TEXT PRIMARY KEY,
    sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    -- SHA-256 (hex) of the cookie secret: the name of the live session in the ephemeral store,
    -- so whoever ends the session can delete it. Never the secret itself.
    key_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    auth_time INTEGER NOT NULL,
    factor_proven_at INTEGER,
    amr TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- When it ends unless used again (idle or absolute limit, whichever comes first); the time it
    -- was ended, once it was. Rows past it are pruned after a while.
    expires_at INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    ip TEXT,
    user_agent TEXT,
    ended_at INTEGER,
    end_reason TEXT
);
CREATE INDEX sso_sessions_sub ON sso_sessions (sub, expires_at);
CREATE INDEX sso_sessions_expires ON sso_sessions (expires_at);

-- Every client that received an authorization code in a session (back-channel logout notifies
-- them when it ends).
CREATE TABLE sso_session_clients (
    sid TEXT NOT NULL REFERENCES sso_sessions (sid) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    first_at INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
);

-- Ending a session revokes the refresh-token families issued in it.
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
