-- A client may require a second factor at every sign-in for it (`client add --require-mfa`).
ALTER TABLE clients ADD COLUMN require_mfa BIGINT NOT NULL DEFAULT 0;
