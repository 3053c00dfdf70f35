-- A user's remembered consent decision per client: the scopes granted.
CREATE TABLE consents (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (sub, client_id)
);
