-- Failed sign-ins per client address (an IPv4 address, or the /64 of an IPv6 one), shared by
-- every API replica: an address past its free failures is refused before any password is
-- checked, with a backoff that grows with each further failure (see
-- pgfleet_domain::services::sessions). Rows whose last failure is older than the forgetting
-- window and that block nothing are deleted by the expiry sweeper.
CREATE TABLE login_throttle (
    addr            text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    blocked_until   timestamptz
);

CREATE INDEX login_throttle_last_failure_at ON login_throttle (last_failure_at);
