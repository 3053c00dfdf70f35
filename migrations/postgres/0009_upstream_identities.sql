-- People who sign in through an upstream identity provider: the provider's subject is the
-- durable link to a local user, never the email. One identity per provider per user.
CREATE TABLE upstream_identities (
    provider_id TEXT NOT NULL,
    upstream_subject TEXT NOT NULL,
    sub TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    PRIMARY KEY (provider_id, upstream_subject),
    UNIQUE (provider_id, sub)
);

-- The groups a user's last upstream sign-in brought (a JSON list), for the `groups` claim.
CREATE TABLE user_groups (
    sub TEXT PRIMARY KEY REFERENCES users (sub) ON DELETE CASCADE,
    groups TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Linking by verified email looks users up by address, case-insensitively.
CREATE INDEX users_email_lower ON users (lower(email));
