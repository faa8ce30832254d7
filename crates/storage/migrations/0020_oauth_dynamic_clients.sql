-- RFC 7591 dynamic client registration (MCP clients register themselves at /register):
-- such a client belongs to no workspace (the user picks one on the consent page, as for any
-- app), is always public (PKCE, no secret), and is counted for the registration caps.
ALTER TABLE oauth_clients ALTER COLUMN workspace_id DROP NOT NULL;
ALTER TABLE oauth_clients ADD CONSTRAINT oauth_clients_dynamic_public
    CHECK (workspace_id IS NOT NULL OR (client_type = 'public' AND secret_hash IS NULL));
CREATE INDEX oauth_clients_dynamic_created ON oauth_clients (created_at) WHERE workspace_id IS NULL;
