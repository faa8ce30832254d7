-- OAuth token families: every code exchange starts one; refresh tokens rotate inside it and
-- access tokens name it (claim `fam`). Revoking a family revokes everything issued from it.
CREATE TABLE oauth_families (
    id          text PRIMARY KEY,
    grant_id    text NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX oauth_families_grant ON oauth_families (grant_id);

ALTER TABLE oauth_codes ADD COLUMN family_id text;
ALTER TABLE oauth_codes ADD COLUMN client_id text NOT NULL DEFAULT '';
ALTER TABLE oauth_codes ALTER COLUMN client_id DROP DEFAULT;

-- One live integration per (client, workspace, user).
CREATE UNIQUE INDEX oauth_grants_live ON oauth_grants (client_id, workspace_id, user_id) WHERE revoked_at IS NULL;
