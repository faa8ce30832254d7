//! Password sign-in and its throttling. A success answers the user as a
//! [`super::members::User`] view and the new session's secret.
//!
//! The rule (every number is a constant below, the address's free failures a setting):
//! 1. **Bounded hashing.** An attempt takes a place at the [`crate::hash_gate`]; when there
//!    is none, it is answered 429 with `Retry-After` at once (no query) and counts nowhere.
//! 2. **Per client address** (the TCP peer, or what a trusted proxy's `X-Forwarded-For`
//!    says, see [`SignInSettings::trusted_proxies`]; an IPv6 address by its /64), shared by every
//!    replica through the `login_throttle` table: every attempt counts as a failure of its
//!    address until it succeeds. From the [`SignInSettings::address_free_failures`]-th
//!    failure on, the address is blocked for [`ADDRESS_FIRST_BLOCK_SECS`], ×4 with each
//!    further failure, at most [`ADDRESS_MAX_BLOCK_SECS`]. A blocked address is answered 429
//!    with `Retry-After` before anything else (before it takes a place at the hasher): no
//!    password is hashed and the account it names is not touched. An address's failures are forgotten
//!    [`ADDRESS_FORGET_SECS`] after its last one; a success takes back only its own count.
//! 3. **Per account**: [`LOCK_AFTER`] consecutive failures lock the account for
//!    [`FIRST_LOCK_SECS`], doubling with each further failure up to [`MAX_LOCK_SECS`]. While
//!    locked, even the right password is refused (401, [`SIGN_IN_FAILED`](super::sessions::SIGN_IN_FAILED)) and nothing is
//!    counted. A success resets the count.
//!
//! Both counts are claimed before the password is checked, each in one atomic statement
//! that counts the attempt and sets the block from the new count: concurrent guesses are
//! admitted one by one and none slips past a lock another one just set. Because the address
//! block grows faster and lasts longer than the account lock, one address guessing gets a
//! few attempts, then one per block: the account lock it causes expires within
//! [`MAX_LOCK_SECS`] while that address stays blocked, and the real user signs in from
//! elsewhere.
//!
//! A password hash is verified on every admitted attempt (a dummy one for unknown e-mails
//! and locked accounts), so timing tells little about which e-mails exist.

use std::net::IpAddr;
use std::sync::OnceLock;

use chrono::Duration;
use pgfleet_storage::login_throttle::{self, Backoff, Claim};
use pgfleet_storage::{sessions, users};

use super::members::User;
use super::sessions::{SessionSecret, SESSION_TTL_HOURS};
use crate::hash_gate::HashGateSettings;
use crate::{AuthFailure, DomainError, Result};

/// Consecutive failures that lock an account.
pub const LOCK_AFTER: i32 = 5;
/// First lock of an account, in seconds; it doubles with each further failure.
pub const FIRST_LOCK_SECS: i64 = 60;
/// Longest lock of an account, in seconds.
pub const MAX_LOCK_SECS: i64 = 5 * 60;
/// Default failures of one client address before it is blocked.
pub const ADDRESS_FREE_FAILURES: i32 = 10;
/// First block of an address, in seconds; ×4 with each further failure.
pub const ADDRESS_FIRST_BLOCK_SECS: i64 = 60;
/// Longest block of an address, in seconds.
pub const ADDRESS_MAX_BLOCK_SECS: i64 = 60 * 60;
/// An address's failures are forgotten this long after its last one, in seconds (longer
/// than its longest block, or the count would restart after every block).
pub const ADDRESS_FORGET_SECS: i64 = 24 * 60 * 60;
/// Longest password checked: no password longer than this can be set, and hashing one
/// costs time in proportion to its length.
pub const MAX_PASSWORD_BYTES: usize = 4096;
/// Longest e-mail looked up.
const MAX_EMAIL_BYTES: usize = 320;

/// The account lock's backoff.
pub const ACCOUNT_BACKOFF: Backoff = Backoff {
    free: LOCK_AFTER,
    first_secs: FIRST_LOCK_SECS as f64,
    factor: 2.0,
    max_secs: MAX_LOCK_SECS as f64,
};

/// Settings of sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInSettings {
    pub hashing: HashGateSettings,
    /// Failures of one client address before it is blocked.
    pub address_free_failures: i32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (default none: the client
    /// is the TCP peer). The HTTP layer applies it.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            hashing: HashGateSettings::for_this_machine(),
            address_free_failures: ADDRESS_FREE_FAILURES,
            trusted_proxies: Vec::new(),
        }
    }
}

impl SignInSettings {
    /// The client address block's backoff.
    pub fn address_backoff(&self) -> Backoff {
        Backoff {
            free: self.address_free_failures.max(1),
            first_secs: ADDRESS_FIRST_BLOCK_SECS as f64,
            factor: 4.0,
            max_secs: ADDRESS_MAX_BLOCK_SECS as f64,
        }
    }
}

/// What the throttle counts a client address as: an IPv4 address (also when mapped into
/// IPv6) as it is, an IPv6 address by its /64 (one host usually has a whole /64).
pub fn address_key(ip: IpAddr) -> String {
    let v6 = match ip {
        IpAddr::V4(a) => return a.to_string(),
        IpAddr::V6(a) => a,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4.to_string();
    }
    let s = v6.segments();
    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
}

/// A hash to verify against when there is no user (or no password): same cost as a real one.
fn dummy_hash(memory: &mut pgfleet_auth::HashMemory) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        pgfleet_auth::hash_password_in(memory, "pgfleet dummy password", &[7; 16])
            .unwrap_or_default()
    })
}

fn refused() -> DomainError {
    DomainError::Unauthenticated(AuthFailure::Invalid)
}

/// The refusal of an address blocked for `left` more.
fn address_blocked(addr: &str, left: Duration) -> DomainError {
    tracing::info!(client = %addr, "sign-in refused: address blocked");
    let secs = (left.num_milliseconds() + 999).div_euclid(1000);
    DomainError::TooManyRequests {
        message: "Too many failed sign-ins from your network address".to_string(),
        hint: Some(format!("Wait {} before trying again.", human_secs(secs))),
        retry_after_secs: secs.max(1) as u64,
    }
}

/// "45 seconds", "3 minutes", "1 hour".
fn human_secs(secs: i64) -> String {
    let secs = secs.max(1);
    let (n, unit) = if secs < 120 {
        (secs, "second")
    } else if secs < 2 * 3600 {
        ((secs + 59) / 60, "minute")
    } else {
        ((secs + 3599) / 3600, "hour")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

use super::sessions::Sessions;

impl Sessions<'_> {
    /// Checks an e-mail and password from `client` and opens a session. A wrong e-mail or
    /// password, or a locked account, is `Unauthenticated(Invalid)` (show
    /// [`SIGN_IN_FAILED`](super::sessions::SIGN_IN_FAILED)); a blocked address or a full
    /// hasher is `TooManyRequests`.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(User, SessionSecret)> {
        let email = email.trim();
        if password.len() > MAX_PASSWORD_BYTES {
            // Never a password of anyone: refused before it costs anything.
            return Err(refused());
        }
        // A full hasher is refused before anything else; a blocked address before it takes
        // a place at the hasher.
        self.ctx.hash_gate().refuse_if_full()?;
        let pool = self.ctx.store().pool();
        let now = self.ctx.clock().now();
        let addr = address_key(client);
        if let Some(until) = login_throttle::blocked_until(pool, &addr, now).await? {
            return Err(address_blocked(&addr, until - now));
        }
        let ticket = self.ctx.hash_gate().admit()?;
        let settings = &self.ctx.config().sign_in;
        let address_backoff = settings.address_backoff();
        // Both claims commit together (one commit, not two), before any hashing.
        let mut tx = self.ctx.store().begin().await?;
        match login_throttle::claim(
            &mut tx,
            &addr,
            now,
            &address_backoff,
            ADDRESS_FORGET_SECS as f64,
        )
        .await?
        {
            Claim::Blocked { until } => return Err(address_blocked(&addr, until - now)),
            Claim::Admitted {
                failures,
                blocked_until: Some(until),
            } => {
                tracing::warn!(client = %addr, failures, block_secs = (until - now).num_seconds(), "address blocked after failed sign-ins")
            }
            Claim::Admitted { .. } => {}
        }
        let user = if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
            None
        } else {
            users::get_by_email(&mut *tx, email).await?
        };
        let admitted = match &user {
            Some(u) => {
                let claim = users::claim_attempt(&mut *tx, &u.id, now, &ACCOUNT_BACKOFF).await?;
                match claim {
                    None => tracing::info!(user = %u.id, "sign-in refused: account locked"),
                    Some((failures, Some(until))) => {
                        tracing::warn!(user = %u.id, failures, lock_secs = (until - now).num_seconds(), "account locked after failed sign-ins")
                    }
                    Some(_) => {}
                }
                claim.is_some()
            }
            None => false,
        };
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        let phc = user
            .as_ref()
            .filter(|_| admitted)
            .and_then(|u| u.password_hash.clone());
        let password = password.to_string();
        let matches = ticket
            .run(move |mem| match phc {
                Some(phc) => pgfleet_auth::verify_password_in(mem, &password, &phc),
                None => {
                    // Same work as a real check, and never a match.
                    let dummy = dummy_hash(mem);
                    let _ = pgfleet_auth::verify_password_in(mem, &password, dummy);
                    false
                }
            })
            .await?;
        let Some(user) = user.filter(|_| matches) else {
            tracing::info!(client = %addr, "sign-in failed");
            return Err(refused());
        };
        let token = self.ctx.rng().with(pgfleet_auth::random_string);
        let csrf = self.ctx.rng().with(pgfleet_auth::random_string);
        let mut tx = self.ctx.store().begin().await?;
        users::reset_failed_logins(&mut *tx, &user.id).await?;
        login_throttle::release(&mut *tx, &addr, address_backoff.free).await?;
        sessions::delete_expired_for_user(&mut *tx, &user.id, now).await?;
        sessions::insert(
            &mut *tx,
            &pgfleet_auth::hash_token(&token),
            &user.id,
            &csrf,
            now,
            now + Duration::hours(SESSION_TTL_HOURS),
        )
        .await?;
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        Ok((user.into(), SessionSecret::new(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_lock_starts_at_five_doubles_and_caps() {
        let b = ACCOUNT_BACKOFF;
        assert_eq!(b.block_secs(4), None);
        assert_eq!(b.block_secs(5), Some(60.0));
        assert_eq!(b.block_secs(6), Some(120.0));
        assert_eq!(b.block_secs(7), Some(240.0));
        assert_eq!(b.block_secs(8), Some(300.0));
        assert_eq!(b.block_secs(i32::MAX), Some(300.0));
    }

    #[test]
    fn address_block_outgrows_the_account_lock() {
        let a = SignInSettings::default().address_backoff();
        assert_eq!(a.block_secs(9), None);
        assert_eq!(a.block_secs(10), Some(60.0));
        assert_eq!(a.block_secs(11), Some(240.0));
        assert_eq!(a.block_secs(12), Some(960.0));
        assert_eq!(a.block_secs(13), Some(3600.0));
        assert_eq!(a.block_secs(1000), Some(3600.0));
        assert!(ADDRESS_FORGET_SECS as f64 > a.max_secs);
    }

    #[test]
    fn addresses_are_keyed_by_v4_or_v6_slash_64() {
        let k = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(k("127.0.0.2"), "127.0.0.2");
        assert_eq!(k("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(k("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(k("::1"), "0:0:0:0::/64");
    }

    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(human_secs(1), "1 second");
        assert_eq!(human_secs(59), "59 seconds");
        assert_eq!(human_secs(240), "4 minutes");
        assert_eq!(human_secs(3600), "60 minutes");
        assert_eq!(human_secs(7200), "2 hours");
    }
}
