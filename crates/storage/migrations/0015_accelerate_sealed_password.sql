-- The `prisma+postgres://` endpoint on servers reached over TCP (issue 18): there pgfleet
-- must log in as the connection's role with its password, which it does not keep. At create
-- and rotate the password is sealed under the API key (AES-256-GCM, key derived with
-- HKDF-SHA256 from the API key and `seal_salt`; the connection id is authenticated data):
-- only a request presenting the key can open it, and the key itself stays stored as its
-- SHA-256 only. NULL for keys issued before this migration (they serve the embedded
-- cluster's Unix socket only; rotating the connection seals the new password).
ALTER TABLE accelerate_keys
    ADD COLUMN seal_salt       bytea,
    ADD COLUMN sealed_password bytea;
