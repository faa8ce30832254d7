-- Replica registry (issue 15, item 2).
--
-- One row per `pgfleet serve` process that shares this metadata store: it registers at start
-- and refreshes `last_seen_at` every few seconds; a clean stop sets `stopped_at`. A replica is
-- alive while it has not stopped and was seen recently (the window is the reader's rule,
-- `pgfleet_domain::services::replicas`). `pgfleet admin replicas` and `/metrics` read it, and
-- a replica with a per-machine backup directory refuses to start while another is alive.
CREATE TABLE replicas (
    id            text PRIMARY KEY,
    version       text NOT NULL,
    address       text NOT NULL,
    started_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    stopped_at    timestamptz
);
