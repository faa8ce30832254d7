-- pgfleet metadata schema, designed for the whole Management API contract.
-- Every listed resource has a `seq` column: lists are ordered by it and cursors encode it,
-- so pagination is stable while rows are added or removed.

CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE users (
    seq              bigserial UNIQUE,
    id               text PRIMARY KEY,
    email            text NOT NULL,
    name             text,
    password_hash    text,
    failed_logins    integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE workspaces (
    seq         bigserial UNIQUE,
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE memberships (
    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE service_tokens (
    seq                 bigserial UNIQUE,
    id                  text PRIMARY KEY,
    workspace_id        text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                text NOT NULL,
    token_hash          bytea NOT NULL UNIQUE,
    value_hint          text NOT NULL,
    created_by_user_id  text REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz,
    last_used_at        timestamptz
);
CREATE INDEX service_tokens_workspace ON service_tokens (workspace_id, seq);

-- Postgres servers that hold tenant databases. `config_key` names the server in the
-- configuration ("embedded" or the URL without its password); credentials stay in config.
CREATE TABLE pg_servers (
    id          text PRIMARY KEY,
    region_id   text NOT NULL,
    config_key  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE projects (
    seq             bigserial UNIQUE,
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id),
    name            text NOT NULL,
    logical_id      text,
    default_region  text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX projects_workspace ON projects (workspace_id, seq);
CREATE UNIQUE INDEX projects_logical_id ON projects (workspace_id, logical_id) WHERE logical_id IS NOT NULL;

CREATE TABLE databases (
    seq                    bigserial UNIQUE,
    id                     text PRIMARY KEY,
    project_id             text NOT NULL REFERENCES projects (id),
    name                   text NOT NULL,
    region_id              text NOT NULL,
    server_id              text REFERENCES pg_servers (id),
    -- what the API shows: provisioning | ready | recovering | failure
    status                 text NOT NULL CHECK (status IN ('provisioning', 'ready', 'recovering', 'failure', 'deleting')),
    is_default             boolean NOT NULL DEFAULT false,
    pg_database            text NOT NULL,
    owner_role             text NOT NULL,
    connection_limit       integer NOT NULL,
    source                 jsonb,
    branch_id              text,
    logical_id             text,
    default_connection_id  text,
    created_at             timestamptz NOT NULL,
    UNIQUE (server_id, pg_database)
);
CREATE INDEX databases_project ON databases (project_id, seq);
CREATE INDEX databases_server ON databases (server_id);
CREATE UNIQUE INDEX databases_logical_id ON databases (project_id, logical_id) WHERE logical_id IS NOT NULL;
CREATE UNIQUE INDEX databases_one_default ON databases (project_id) WHERE is_default;

CREATE TABLE connections (
    seq            bigserial UNIQUE,
    id             text PRIMARY KEY,
    database_id    text NOT NULL REFERENCES databases (id),
    name           text NOT NULL,
    kind           text NOT NULL DEFAULT 'postgres',
    role_name      text NOT NULL,
    -- SCRAM-SHA-256 verifier of the current password (the pooler authenticates with it).
    scram_verifier text NOT NULL,
    status         text NOT NULL DEFAULT 'creating' CHECK (status IN ('creating', 'active', 'deleting')),
    created_at     timestamptz NOT NULL,
    rotated_at     timestamptz
);
CREATE INDEX connections_database ON connections (database_id, seq);
CREATE UNIQUE INDEX connections_role ON connections (role_name);

CREATE TABLE backups (
    seq           bigserial UNIQUE,
    id            text PRIMARY KEY,
    database_id   text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('full')),
    trigger       text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    status        text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    size_bytes    bigint,
    location      text,
    error         text,
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz
);
CREATE INDEX backups_database ON backups (database_id, seq);

CREATE TABLE oauth_clients (
    seq                 bigserial UNIQUE,
    id                  text PRIMARY KEY,
    workspace_id        text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                text NOT NULL,
    description         text,
    redirect_uris       text[] NOT NULL,
    client_type         text NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash         bytea,
    created_by_user_id  text REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL
);

-- An integration: a user's consent for one client on one workspace.
CREATE TABLE oauth_grants (
    seq           bigserial UNIQUE,
    id            text PRIMARY KEY,
    client_id     text NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX oauth_grants_workspace ON oauth_grants (workspace_id, seq);

CREATE TABLE oauth_codes (
    code_hash       bytea PRIMARY KEY,
    grant_id        text NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL,
    code_challenge  text NOT NULL,
    scopes          text[] NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);

CREATE TABLE oauth_refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    grant_id    text NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    family_id   text NOT NULL,
    created_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX oauth_refresh_family ON oauth_refresh_tokens (family_id);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    algorithm    text NOT NULL,
    private_pem  text NOT NULL,
    public_jwk   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz
);

CREATE TABLE sessions (
    id_hash     bytea PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Intent log of the reconciler: one row per change to the real world.
CREATE TABLE operations (
    seq          bigserial UNIQUE,
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    resource_id  text NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    step         text,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    error        text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX operations_open ON operations (next_attempt_at) WHERE state IN ('pending', 'running');
CREATE INDEX operations_resource ON operations (resource_id);

CREATE TABLE idempotency_keys (
    principal     text NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    status        integer,
    response      jsonb,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (principal, key)
);

CREATE TABLE usage_samples (
    database_id  text NOT NULL,
    sampled_at   timestamptz NOT NULL,
    operations   bigint NOT NULL,
    storage_bytes bigint NOT NULL,
    PRIMARY KEY (database_id, sampled_at)
);
