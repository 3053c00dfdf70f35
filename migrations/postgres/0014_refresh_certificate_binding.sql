-- The client certificate (its SHA-256 thumbprint, as in cnf.x5t#S256) a public client's
-- refresh-token family is bound to (RFC 8705 §4).
ALTER TABLE refresh_families ADD COLUMN x5t_s256 TEXT;
