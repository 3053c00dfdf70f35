CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash BYTEA,
    auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    jwks_uri TEXT,
    jwks TEXT,
    first_party BIGINT NOT NULL,
    access_token_alg TEXT,
    access_token_ttl BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    sub TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT,
    name TEXT,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

-- One row per algorithm: the compare-and-set counter that makes rotation happen once per cluster.
CREATE TABLE signing_key_generations (
    alg TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO signing_key_generations (alg, generation) VALUES ('RS256', 0), ('ES256', 0), ('EdDSA', 0);
