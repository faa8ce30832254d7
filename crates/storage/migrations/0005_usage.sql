-- Usage sampling (see crates/storage/src/usage.rs).
--
-- `source` names the counter a sample's `operations` was read from: `statements`
-- (pg_stat_statements calls) or `transactions` (pg_stat_database commits + rollbacks).
-- Deltas are only taken between samples of the same source.
ALTER TABLE usage_samples ADD COLUMN source text NOT NULL DEFAULT 'statements';

-- Retention pruning deletes by age across all databases.
CREATE INDEX usage_samples_sampled_at ON usage_samples (sampled_at);
