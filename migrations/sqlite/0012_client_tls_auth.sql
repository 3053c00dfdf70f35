-- mTLS client authentication (RFC 8705 §2.1): the certificate subject a `tls_client_auth` client
-- is registered with (a DN, or a DNS subject alternative name).
ALTER TABLE clients ADD COLUMN tls_client_auth_subject_dn TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_san_dns TEXT;
