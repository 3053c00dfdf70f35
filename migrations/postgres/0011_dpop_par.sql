-- DPoP (RFC 9449) and pushed authorization requests (RFC 9126): per-client requirements, and
-- the DPoP key a public client's refresh-token family is bound to (its RFC 7638 thumbprint).
ALTER TABLE clients ADD COLUMN require_dpop BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
