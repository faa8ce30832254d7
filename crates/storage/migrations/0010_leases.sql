-- Leases of the periodic jobs (issue 15): with several API replicas on one metadata store,
-- each job (usage sampler, tenant guard, backup scheduler and retention, expiry sweeper) runs
-- one round per interval across all of them. `holder` is the replica id of the process that
-- holds the job's lease until `expires_at` (renewed at every tick of its loop); `last_run_at`
-- is when the last round started, on whichever replica.
CREATE TABLE leases (
    job text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL,
    last_run_at timestamptz
);
