-- The storage quota's read-only mode (issue 14): set by the tenant guard before it puts a
-- database in that mode, cleared after it took it out. Every replica reads it; the mode
-- itself lives in the tenant database (pgfleet_dataplane::quota).
ALTER TABLE databases ADD COLUMN over_quota_since timestamptz;
