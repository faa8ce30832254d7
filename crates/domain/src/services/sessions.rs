//! Browser sessions of the authorization server's pages: sessions stored only as the
//! SHA-256 of their cookie value, each with its own CSRF token, and what a signed-in user
//! may see (their workspaces; their apps are [`super::oauth`]'s). Signing in, and its throttling,
//! is [`super::sign_in`]. Callers see the user as a [`User`] and the workspaces as
//! [`WorkspaceSummary`] views, never as stored rows.
//!
//! Expired rows are forgotten by [`Sessions::sweep_expired`], which the server runs every
//! [`SWEEP_EVERY`] ([`Sessions::spawn_expiry_sweeper`]): sessions past their expiry, and
//! the OAuth codes and refresh tokens that can no longer be used, and sign-in throttle rows
//! of client addresses that are forgotten (see the function). A sign-in also forgets its
//! user's expired sessions at once.

use pgfleet_storage::{sessions, workspaces, WorkspaceRow};
use tokio::sync::watch;

use super::members::User;
use super::periodic::Periodic;
use crate::lease::Job;
use crate::Result;

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
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

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
    pub user: User,
    pub csrf: String,
}

impl std::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A workspace as a signed-in user's pickers list it: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSummary {
    pub id: String,
    pub name: String,
}

impl From<WorkspaceRow> for WorkspaceSummary {
    fn from(w: WorkspaceRow) -> Self {
        Self {
            id: w.id,
            name: w.name,
        }
    }
}

/// What one [`Sessions::sweep_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub sessions: u64,
    pub oauth_codes: u64,
    pub refresh_tokens: u64,
    /// Client addresses whose failed sign-ins are forgotten.
    pub sign_in_throttles: u64,
}

/// A session cookie value as [`pgfleet_auth::random_string`] makes them (43 base64url
/// characters): anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Console sign-in, sessions and what a signed-in user sees. Obtained from [`super::Services::sessions`].
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Sessions<'_> {
    /// The live session of a cookie value (`None` when unknown or expired).
    pub async fn session(&self, token: &str) -> Result<Option<SessionInfo>> {
        if !well_formed(token) {
            return Ok(None);
        }
        let hash = pgfleet_auth::hash_token(token);
        let Some(row) = sessions::get(self.ctx.store().pool(), &hash).await? else {
            return Ok(None);
        };
        if row.session_expires_at <= self.ctx.clock().now() {
            sessions::delete(self.ctx.store().pool(), &hash).await?;
            return Ok(None);
        }
        Ok(Some(SessionInfo {
            user: row.user.into(),
            csrf: row.csrf_token,
        }))
    }

    /// Ends a session (an unknown one is not an error).
    pub async fn sign_out(&self, token: &str) -> Result<()> {
        if well_formed(token) {
            sessions::delete(self.ctx.store().pool(), &pgfleet_auth::hash_token(token)).await?;
        }
        Ok(())
    }

    /// Deletes what has expired as of `now` and can never be used again: sessions past
    /// their expiry; authorization codes past theirs, unless used by a still-live token
    /// family (a replay of such a code must still revoke that family); refresh tokens of a
    /// revoked family or grant (revocation is final); throttle rows of client addresses
    /// whose last failed sign-in is older than [`super::sign_in::ADDRESS_FORGET_SECS`] and
    /// that block nothing. Token families and grants themselves
    /// are kept: access tokens name their family and the integration list shows grants.
    pub async fn sweep_expired(&self, now: chrono::DateTime<chrono::Utc>) -> Result<SweepCounts> {
        let pool = self.ctx.store().pool();
        let counts = SweepCounts {
            sessions: sessions::delete_expired(pool, now).await?,
            oauth_codes: pgfleet_storage::oauth::delete_dead_codes(pool, now).await?,
            refresh_tokens: pgfleet_storage::oauth::delete_dead_refresh_tokens(pool).await?,
            sign_in_throttles: pgfleet_storage::login_throttle::delete_expired(
                pool,
                now,
                super::sign_in::ADDRESS_FORGET_SECS as f64,
            )
            .await?,
        };
        if counts != SweepCounts::default() {
            tracing::info!(
                sessions = counts.sessions,
                oauth_codes = counts.oauth_codes,
                refresh_tokens = counts.refresh_tokens,
                sign_in_throttles = counts.sign_in_throttles,
                "expired sign-in data swept"
            );
        }
        Ok(counts)
    }

    /// Runs [`Self::sweep_expired`] once per `every` across the replicas sharing the
    /// metadata store (see [`crate::lease`]) until `shutdown` turns true. A failed round is
    /// logged and retried at the next one.
    pub fn spawn_expiry_sweeper(
        &self,
        shutdown: watch::Receiver<bool>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = std::sync::Arc::clone(self.ctx);
        tokio::spawn(async move {
            let mut periodic = Periodic::new(&ctx, Job::ExpirySweeper, every, shutdown);
            while periodic.next().await {
                match periodic
                    .run(ctx.sessions().sweep_expired(ctx.clock().now()))
                    .await
                {
                    None => return,
                    Some(Err(e)) => tracing::warn!(error = %e, "expiry sweep"),
                    Some(Ok(_)) => {}
                }
            }
        })
    }

    /// Every workspace the user is a member of, in creation order.
    pub async fn user_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceSummary>> {
        Ok(
            workspaces::list_for_user(self.ctx.store().pool(), user_id, None, MAX_WORKSPACES)
                .await?
                .into_iter()
                .map(WorkspaceSummary::from)
                .collect(),
        )
    }

    /// The user belongs to the workspace.
    pub async fn user_is_member(&self, user_id: &str, workspace_id: &str) -> Result<bool> {
        Ok(workspaces::is_member(self.ctx.store().pool(), workspace_id, user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_generated_tokens_are_looked_up() {
        assert!(well_formed(&"a".repeat(43)));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{}=", "a".repeat(42))));
        assert!(!well_formed(""));
    }
}
