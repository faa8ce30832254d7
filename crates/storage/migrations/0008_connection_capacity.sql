-- Connection capacity of each Postgres server (issue 14, item 5).
--
-- `connection_capacity`: how many connection slots the databases placed on the server may
-- hold together (the sum of their `databases.connection_limit`): the server's
-- max_connections less its superuser-only slots and pgfleet's own share (see
-- crates/domain/src/capacity.rs). Written by every pgfleet process at start from what the
-- server reports (NULL until one has reached it), so every replica places databases against
-- the same figure.
ALTER TABLE pg_servers ADD COLUMN connection_capacity integer CHECK (connection_capacity >= 0);
