-- Claimable temporary databases (issue 20): projects created without an account through the
-- routes of the `create-db` CLI, kept in the holding workspace (its id is the setting
-- `claimable_workspace`; it has no members, so no user sees it) until claimed into a user's
-- workspace or deleted by the reaper once `expires_at` passed.
--
-- One row per such project, kept after it is claimed or reaped until the per-client rate
-- window is over (the rate limit counts rows by `client_addr` and `created_at`; the reaper
-- forgets older closed rows). Only the SHA-256 of the claim token is stored. No foreign key
-- to `projects`: a reaped project's row goes, this one stays for the count.
CREATE TABLE claimables (
    project_id   text PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE,
    client_addr  text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    -- Set once, by the claim (with the receiving workspace) or by the reaper: the row is
    -- closed then, and its token answers "already claimed" or "expired".
    claimed_at   timestamptz,
    claimed_into text,
    reaped_at    timestamptz
);
CREATE INDEX claimables_open ON claimables (expires_at) WHERE claimed_at IS NULL AND reaped_at IS NULL;
CREATE INDEX claimables_client ON claimables (client_addr, created_at);
