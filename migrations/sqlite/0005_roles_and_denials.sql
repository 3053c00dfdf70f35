-- Roles granted to users (`admin` is what lets a person hold the sesame:admin scope).
CREATE TABLE user_roles (
    sub TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (sub, role)
);

-- Revoked access tokens, the record behind the ephemeral store's deny list: one token by its
-- jti, or every token of a client (or API key) issued up to issued_before. Kept until
-- expires_at, after which no token it covers can still be valid.
CREATE TABLE access_token_denials (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    issued_before INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX access_token_denials_expiry ON access_token_denials (expires_at);
