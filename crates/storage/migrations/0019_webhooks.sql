-- Signed webhooks (issue 20): endpoints of a workspace, and a durable outbox of events and
-- their deliveries.
--
-- An event is written in the same metadata transaction as the state change it reports where
-- the domain has one to join (the reconciler finishing an operation, a backup's outcome), so
-- a crash cannot lose it; `body` is the exact JSON that is signed and sent, so every retry
-- sends the same bytes under the same `webhook-id` (the event id). One delivery row per
-- endpoint subscribed when the event was written (and no event row when none was).
-- Delivery workers on any replica claim due rows with `FOR UPDATE SKIP LOCKED`, moving
-- `next_attempt_at` past a visibility deadline first: a worker that dies mid-attempt leaves
-- the row due again after the deadline.
CREATE TABLE webhook_endpoints (
    seq             bigserial UNIQUE,
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url             text NOT NULL,
    -- NULL: every event type.
    event_types     text[],
    -- The signing secret sealed (AES-256-GCM under a key derived with HKDF-SHA256 from the
    -- server's oauth.key_encryption_key and this salt, the endpoint id as associated data):
    -- it must be opened to sign, so it cannot be hashed, and is never stored in plain text.
    seal_salt       bytea NOT NULL,
    sealed_secret   bytea NOT NULL,
    -- Set when the endpoint failed continuously for webhooks.disable_after_secs.
    disabled_at     timestamptz,
    -- First failure of the current run of failures; NULL after a success.
    failing_since   timestamptz,
    last_attempt_at timestamptz,
    -- HTTP status of the last attempt, or NULL when it got no answer (see last_error).
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id);

CREATE TABLE webhook_events (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    type         text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    seq             bigserial PRIMARY KEY,
    event_id        text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, seq);
