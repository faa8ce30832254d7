-- Backups remember the database's write counter when they were taken, so the scheduler can
-- skip a database that did not change since.
ALTER TABLE backups ADD COLUMN activity_marker bigint;
CREATE INDEX backups_created ON backups (created_at);
