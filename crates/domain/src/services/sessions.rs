//! Browser sessions of the authorization server's pages: password sign-in with throttling,
//! sessions stored only as the SHA-256 of their cookie value, each with its own CSRF token,
//! and what a signed-in user may see (their workspaces and those workspaces' apps).
//!
//! Throttling: after [`LOCK_AFTER`] consecutive wrong passwords the account is locked for one
//! minute, doubling with each further failure up to [`MAX_LOCK_SECS`]. While locked, even the
//! right password is refused, with the same message as a wrong one ([`SIGN_IN_FAILED`]). A
//! password hash is verified on every attempt (a dummy one for unknown e-mails), so timing
//! tells little about which e-mails exist.
//!
//! Expired rows are forgotten by [`Services::sweep_expired`], which the server runs every
//! [`SWEEP_EVERY`] ([`Services::spawn_expiry_sweeper`]): sessions past their expiry, and
//! the OAuth codes and refresh tokens that can no longer be used (see the function). A
//! sign-in also forgets its user's expired sessions at once.

use std::sync::OnceLock;

use chrono::Duration;
use pgfleet_storage::oauth::ClientRow;
use pgfleet_storage::{sessions, users, workspaces, UserRow, WorkspaceRow};
use tokio::sync::watch;

use crate::{AuthFailure, DomainError, Randomness, Result, Services};

/// Consecutive failures that lock an account.
pub const LOCK_AFTER: i32 = 5;
/// First lock, in seconds; it doubles with each further failure.
pub const FIRST_LOCK_SECS: i64 = 60;
/// Longest lock, in seconds.
pub const MAX_LOCK_SECS: i64 = 15 * 60;
/// How long a session lasts.
pub const SESSION_TTL_HOURS: i64 = 12;
/// What every failed sign-in answers, whatever the reason.
pub const SIGN_IN_FAILED: &str = "Email or password is wrong, or the account is temporarily locked";
/// How often the server sweeps expired sessions and dead OAuth codes and refresh tokens.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Workspaces listed for one user at most.
const MAX_WORKSPACES: i64 = 1000;

/// A session's cookie value: shown once to the browser, stored only as its SHA-256.
pub struct SessionSecret(String);

impl SessionSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// A live session: its user and the CSRF token its forms carry.
#[derive(Clone)]
pub struct SessionInfo {
    pub user: UserRow,
    pub csrf: String,
}

impl std::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What one [`Services::sweep_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub sessions: u64,
    pub oauth_codes: u64,
    pub refresh_tokens: u64,
}

/// How long an account is locked after its `failures`-th consecutive failure (`None` below
/// [`LOCK_AFTER`]).
pub fn lock_duration(failures: i32) -> Option<Duration> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = (failures - LOCK_AFTER).clamp(0, 20) as u32;
    let secs = FIRST_LOCK_SECS
        .saturating_mul(1i64 << doublings)
        .min(MAX_LOCK_SECS);
    Some(Duration::seconds(secs))
}

/// A session cookie value as [`pgfleet_auth::random_string`] makes them (43 base64url
/// characters): anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A hash to verify against when there is no user (or no password): same cost as a real one.
fn dummy_hash(rng: &Randomness) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        rng.with(|r| pgfleet_auth::hash_password("pgfleet dummy password", r))
            .unwrap_or_default()
    })
}

fn refused() -> DomainError {
    DomainError::Unauthenticated(AuthFailure::Invalid)
}

impl Services {
    /// Checks an e-mail and password and opens a session. Every refusal is
    /// `Unauthenticated(Invalid)`; show [`SIGN_IN_FAILED`] for it.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<(UserRow, SessionSecret)> {
        let email = email.trim();
        let user = if email.is_empty() || email.len() > 320 {
            None
        } else {
            users::get_by_email(self.store().pool(), email).await?
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.clone());
        let rng = self.rng().clone();
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || match phc {
            Some(phc) => pgfleet_auth::verify_password(&password, &phc),
            None => {
                // Same work as a real check, and never a match.
                let _ = pgfleet_auth::verify_password(&password, dummy_hash(&rng));
                false
            }
        })
        .await
        .map_err(DomainError::internal)?;
        let Some(user) = user else {
            return Err(refused());
        };
        let now = self.clock().now();
        if user.locked_until.is_some_and(|t| t > now) {
            tracing::info!(user = %user.id, "sign-in refused: account locked");
            return Err(refused());
        }
        if !matches || user.password_hash.is_none() {
            let failures = users::record_failed_login(self.store().pool(), &user.id).await?;
            if let Some(lock) = lock_duration(failures) {
                users::lock_until(self.store().pool(), &user.id, now + lock).await?;
                tracing::warn!(user = %user.id, failures, lock_secs = lock.num_seconds(), "account locked after failed sign-ins");
            } else {
                tracing::info!(user = %user.id, failures, "sign-in failed");
            }
            return Err(refused());
        }
        let token = self.rng().with(pgfleet_auth::random_string);
        let csrf = self.rng().with(pgfleet_auth::random_string);
        let mut tx = self.store().begin().await?;
        if user.failed_logins != 0 || user.locked_until.is_some() {
            users::reset_failed_logins(&mut *tx, &user.id).await?;
        }
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
        Ok((user, SessionSecret(token)))
    }

    /// The live session of a cookie value (`None` when unknown or expired).
    pub async fn session(&self, token: &str) -> Result<Option<SessionInfo>> {
        if !well_formed(token) {
            return Ok(None);
        }
        let hash = pgfleet_auth::hash_token(token);
        let Some(row) = sessions::get(self.store().pool(), &hash).await? else {
            return Ok(None);
        };
        if row.session_expires_at <= self.clock().now() {
            sessions::delete(self.store().pool(), &hash).await?;
            return Ok(None);
        }
        Ok(Some(SessionInfo {
            user: row.user,
            csrf: row.csrf_token,
        }))
    }

    /// Ends a session (an unknown one is not an error).
    pub async fn sign_out(&self, token: &str) -> Result<()> {
        if well_formed(token) {
            sessions::delete(self.store().pool(), &pgfleet_auth::hash_token(token)).await?;
        }
        Ok(())
    }

    /// Deletes what has expired as of `now` and can never be used again: sessions past
    /// their expiry; authorization codes past theirs, unless used by a still-live token
    /// family (a replay of such a code must still revoke that family); refresh tokens of a
    /// revoked family or grant (revocation is final). Token families and grants themselves
    /// are kept: access tokens name their family and the integration list shows grants.
    pub async fn sweep_expired(&self, now: chrono::DateTime<chrono::Utc>) -> Result<SweepCounts> {
        let pool = self.store().pool();
        let counts = SweepCounts {
            sessions: sessions::delete_expired(pool, now).await?,
            oauth_codes: pgfleet_storage::oauth::delete_dead_codes(pool, now).await?,
            refresh_tokens: pgfleet_storage::oauth::delete_dead_refresh_tokens(pool).await?,
        };
        if counts != SweepCounts::default() {
            tracing::info!(
                sessions = counts.sessions,
                oauth_codes = counts.oauth_codes,
                refresh_tokens = counts.refresh_tokens,
                "expired sign-in data swept"
            );
        }
        Ok(counts)
    }

    /// Runs [`Self::sweep_expired`] now and then every `every` until `shutdown` turns true.
    /// A failed round is logged and retried at the next one.
    pub fn spawn_expiry_sweeper(
        &self,
        mut shutdown: watch::Receiver<bool>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.sweep_expired(this.clock().now()).await {
                    tracing::warn!(error = %e, "expiry sweep");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    // A dropped sender also means stop (and would wake us at once forever).
                    r = shutdown.changed() => if r.is_err() { return; },
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        })
    }

    /// Every workspace the user is a member of, in creation order.
    pub async fn user_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceRow>> {
        Ok(workspaces::list_for_user(self.store().pool(), user_id, None, MAX_WORKSPACES).await?)
    }

    /// An app of one of the user's workspaces (`NotFound` otherwise, also for apps of
    /// workspaces the user is not in).
    pub async fn user_oauth_client(&self, user_id: &str, client_id: &str) -> Result<ClientRow> {
        let client = pgfleet_storage::oauth::get_client(self.store().pool(), client_id).await?;
        match client {
            Some(c)
                if workspaces::is_member(self.store().pool(), &c.workspace_id, user_id).await? =>
            {
                Ok(c)
            }
            _ => Err(DomainError::not_found("App", client_id)),
        }
    }

    /// The user belongs to the workspace.
    pub async fn user_is_member(&self, user_id: &str, workspace_id: &str) -> Result<bool> {
        Ok(workspaces::is_member(self.store().pool(), workspace_id, user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_starts_at_five_doubles_and_caps() {
        assert_eq!(lock_duration(0), None);
        assert_eq!(lock_duration(4), None);
        assert_eq!(lock_duration(5), Some(Duration::seconds(60)));
        assert_eq!(lock_duration(6), Some(Duration::seconds(120)));
        assert_eq!(lock_duration(7), Some(Duration::seconds(240)));
        assert_eq!(lock_duration(8), Some(Duration::seconds(480)));
        assert_eq!(lock_duration(9), Some(Duration::seconds(900)));
        assert_eq!(lock_duration(1000), Some(Duration::seconds(900)));
        assert_eq!(lock_duration(i32::MAX), Some(Duration::seconds(900)));
    }

    #[test]
    fn only_generated_tokens_are_looked_up() {
        assert!(well_formed(&"a".repeat(43)));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{}=", "a".repeat(42))));
        assert!(!well_formed(""));
    }
}
