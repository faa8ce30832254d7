-- Draining a Postgres server (issue 15, item 6).
--
-- `drained_at`: when an operator drained the server (`pgfleet admin servers drain ID`); NULL
-- while it takes new databases. Placement skips a drained server; the databases already on
-- it keep working. Kept in the metadata store so every replica sharing it places alike.
ALTER TABLE pg_servers ADD COLUMN drained_at timestamptz;
