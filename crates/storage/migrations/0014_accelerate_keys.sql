-- Per-connection API keys of the `prisma+postgres://` endpoint (issue 18).
--
-- One key per connection, stored as the SHA-256 of the key (the key carries 256 bits of
-- entropy, as service tokens do, so one hash is enough and lets a request be looked up by
-- it); the key itself is shown once, in the create or rotate answer, and never stored.
-- Rotating replaces the row and deleting the connection removes it, in the same transaction
-- as the rest of the change, so an old key stops resolving at once on every replica.
CREATE TABLE accelerate_keys (
    connection_id text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    key_hash      bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL
);
