-- Point-in-time recovery (issue 19): the restorable window of each archived server.
--
-- One row per Postgres server whose WAL pgfleet archives, written by the periodic PITR job
-- (once per interval across replicas, under its lease) from the archive's repository and the
-- server's `pg_stat_archiver`; every replica answers a database's `restoreWindow`, `/readyz`
-- and `/metrics` from it, without running pgBackRest per request. A server without a row is
-- not archived (or not checked yet).
CREATE TABLE pitr_windows (
    server_id         text PRIMARY KEY REFERENCES pg_servers (id),
    -- End of the oldest base backup: the earliest time a restore can target.
    earliest          timestamptz,
    -- When the last WAL segment reached the repository.
    last_archived_at  timestamptz,
    last_failed_at    timestamptz,
    failed_count      bigint NOT NULL DEFAULT 0,
    -- Bytes in the server's pg_wal (WAL that cannot be archived piles up there).
    wal_bytes         bigint NOT NULL DEFAULT 0,
    last_full_at      timestamptz,
    last_incr_at      timestamptz,
    -- The last error of the job on this server (stanza, base backup, expire, status); NULL
    -- once a round went through.
    last_error        text,
    checked_at        timestamptz NOT NULL
);
