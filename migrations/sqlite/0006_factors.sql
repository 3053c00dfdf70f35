-- A user's second factors: authenticator apps (TOTP, RFC 6238) and, later, passkeys.
CREATE TABLE user_factors (
    id TEXT PRIMARY KEY,
    sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    name TEXT NOT NULL,
    -- TOTP: the shared secret, AES-256-GCM under the key-encryption key (nonce || ciphertext ||
    -- tag), bound to `totp:<id>` as associated data. Never stored in clear.
    secret_sealed BLOB,
    -- TOTP: the last time step (unix time / 30) whose code was accepted. A code is taken by a
    -- conditional update (`WHERE last_step < step`), so each step is accepted at most once.
    last_step INTEGER NOT NULL,
    -- Passkeys: the WebAuthn credential, as JSON (reserved).
    credential TEXT,
    -- Null until the enrolment is confirmed with a first code; an unconfirmed factor never signs in.
    confirmed_at INTEGER,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX user_factors_sub ON user_factors (sub);

-- Single-use recovery codes, by hash (SHA-256 of the user's sub and the normalised code). A code
-- is spent by a conditional update (`WHERE used_at IS NULL`): exactly one use wins.
CREATE TABLE recovery_codes (
    sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (sub, code_hash)
);
