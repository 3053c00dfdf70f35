-- Pruning finds ended refresh families by when they expire or were revoked.
CREATE INDEX refresh_families_absolute_expiry ON refresh_families (absolute_expires_at);
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at);
