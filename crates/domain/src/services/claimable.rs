//! Claimable temporary databases (the `create-db` CLI's service): a project with its default
//! database created without an account, in the holding workspace (one per metadata store,
//! made at first use, no members, so no user sees it), with an expiry; claimed into a
//! signed-in user's workspace through the one move of a project ([`super::Projects`]'s
//! `move_to`, which the API's transfer uses), or deleted once expired by the reaper through
//! the one delete path (`plan_delete`: intent and operations, committed with the row that
//! says it was reaped, so a crash leaves it done or not begun).
//!
//! Secrets: the claim token (`pgfcl_` + 256 random bits) is the only thing that names a
//! claimable database outside; the store keeps its SHA-256. Limits ([`ClaimableSettings`]):
//! off unless enabled, at most `per_client_per_hour` creates per client address (an IPv6
//! one by its /64, [`super::sign_in::address_key`]) and
//! `max_unclaimed` open at once, all counted in the store under one transaction-level lock,
//! so several replicas share them exactly.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgfleet_api_types::database::CreatedDatabase;
use pgfleet_api_types::project::{CreateProject, Project};
use pgfleet_storage::claimables::{self, ClaimableRow};
use pgfleet_storage::{get_setting, projects, put_setting, workspaces, StorageError};
use tokio::sync::watch;

use super::periodic::Periodic;
use crate::access::WorkspaceWideWrite;
use crate::ids::{new_id, WORKSPACE};
use crate::intent::Run;
use crate::lease::Job;
use crate::{DomainError, Result};

/// The setting that names the holding workspace.
const HOLDING_KEY: &str = "claimable_workspace";
/// The holding workspace's name (no user sees it; an operator reading the store does).
const HOLDING_NAME: &str = "Claimable databases (system)";
/// Prefix of claim tokens.
pub const CLAIM_TOKEN_PREFIX: &str = "pgfcl_";
/// The window of the per-client rate limit.
const RATE_WINDOW: Duration = Duration::from_secs(3600);
/// Expired databases deleted per reaper round (the rest wait for the next).
const REAP_BATCH: i64 = 50;
/// Name of every claimable project (and its default database).
const PROJECT_NAME: &str = "Temporary database";

/// `[claimable]` of the configuration.
#[derive(Debug, Clone)]
pub struct ClaimableSettings {
    /// Off by default: with it on, anyone who reaches the server may create databases.
    pub enabled: bool,
    /// Lifetime of an unclaimed database; a shorter one the client asks for is honoured.
    pub ttl: Duration,
    /// Creates per client address per hour.
    pub per_client_per_hour: u32,
    /// Unclaimed databases alive at once, across replicas.
    pub max_unclaimed: u32,
    /// Time between two reaper rounds.
    pub reap_every: Duration,
}

impl Default for ClaimableSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl: Duration::from_secs(86_400),
            per_client_per_hour: 5,
            max_unclaimed: 10,
            reap_every: Duration::from_secs(60),
        }
    }
}

/// A create as the CLI asks for it.
#[derive(Debug, Clone)]
pub struct TemporaryCreate {
    pub region: String,
    /// The client's wish; the server's `ttl` is the maximum.
    pub ttl: Option<Duration>,
}

/// A created claimable database. `claim_token` is shown once (it is what the claim URL
/// carries).
pub struct TemporaryDatabase {
    pub claim_token: String,
    pub project_id: String,
    pub expires_at: DateTime<Utc>,
    pub database: Option<CreatedDatabase>,
}

impl std::fmt::Debug for TemporaryDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryDatabase")
            .field("project_id", &self.project_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a claim token names now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Claimable until `expires_at`.
    Open {
        expires_at: DateTime<Utc>,
    },
    Claimed,
    Expired,
    /// No such token (or a malformed one).
    Unknown,
}

/// An open claimable database (the admin page).
#[derive(Debug, Clone)]
pub struct OpenClaimable {
    pub project_id: String,
    pub client_addr: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The admission of one claimable create, checked and written inside the project's create
/// transaction ([`super::Projects::create_in`]).
pub(crate) struct Admission<'a> {
    settings: &'a ClaimableSettings,
    token_hash: Vec<u8>,
    client_addr: String,
    expires_at: DateTime<Utc>,
}

impl Admission<'_> {
    /// Under the admission lock: the cap, the client's rate, then the row.
    pub(crate) async fn admit(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        project_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        claimables::lock_admission(tx).await?;
        let open = claimables::count_open(&mut **tx).await?;
        if open >= i64::from(self.settings.max_unclaimed) {
            return Err(DomainError::TooManyRequests {
                message: "Too many temporary databases are waiting to be claimed on this server"
                    .to_string(),
                hint: Some("Try again later, when some have been claimed or expired.".to_string()),
                retry_after_secs: 60,
            });
        }
        let since = now - chrono_duration(RATE_WINDOW);
        let (recent, oldest) = claimables::recent_of(&mut **tx, &self.client_addr, since).await?;
        if recent >= i64::from(self.settings.per_client_per_hour) {
            let free_at = oldest.unwrap_or(now) + chrono_duration(RATE_WINDOW);
            let retry = (free_at - now).num_seconds().max(1);
            return Err(DomainError::TooManyRequests {
                message: format!(
                    "At most {} temporary databases per hour may be created from one address",
                    self.settings.per_client_per_hour
                ),
                hint: Some(format!("Try again in {retry} seconds.")),
                retry_after_secs: u64::try_from(retry).unwrap_or(1),
            });
        }
        claimables::insert(
            &mut **tx,
            &ClaimableRow {
                project_id: project_id.to_string(),
                token_hash: self.token_hash,
                client_addr: self.client_addr,
                created_at: now,
                expires_at: self.expires_at,
                claimed_at: None,
                claimed_into: None,
                reaped_at: None,
            },
        )
        .await?;
        Ok(())
    }
}

/// Claimable temporary databases. Obtained from [`super::Services::claimable`].
#[derive(Debug, Clone, Copy)]
pub struct Claimable<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Claimable<'_> {
    fn settings(&self) -> &ClaimableSettings {
        &self.ctx.config().claimable
    }

    /// Whether the server offers claimable databases at all (off: their routes are 404).
    pub fn enabled(&self) -> bool {
        self.settings().enabled
    }

    fn require_enabled(&self) -> Result<()> {
        if self.enabled() {
            Ok(())
        } else {
            Err(DomainError::not_found("Route", "claimable databases"))
        }
    }

    /// Creates a claimable database for `client`, refused with 429 over a limit.
    pub async fn create(&self, client: IpAddr, req: TemporaryCreate) -> Result<TemporaryDatabase> {
        self.require_enabled()?;
        let settings = self.settings();
        let ttl = req
            .ttl
            .filter(|t| !t.is_zero())
            .map_or(settings.ttl, |t| t.min(settings.ttl));
        let workspace = self.holding_workspace().await?;
        let secret = self
            .ctx
            .rng()
            .with(|r| pgfleet_auth::generate_token(CLAIM_TOKEN_PREFIX, r));
        let expires_at = self.ctx.clock().now() + chrono_duration(ttl);
        let created = self
            .ctx
            .projects()
            .create_in(
                &workspace,
                CreateProject {
                    name: Some(PROJECT_NAME.to_string()),
                    region: Some(req.region),
                    ..CreateProject::default()
                },
                Some(Admission {
                    settings,
                    token_hash: secret.hash,
                    // An IPv6 client by its /64, as sign-in throttling counts it: one
                    // host usually holds the whole /64.
                    client_addr: super::sign_in::address_key(client),
                    expires_at,
                }),
            )
            .await?;
        tracing::info!(project = %created.project.id, client = %client, "claimable database created");
        Ok(TemporaryDatabase {
            claim_token: secret.plaintext,
            project_id: created.project.id,
            expires_at,
            database: created.database,
        })
    }

    /// What `token` names now.
    pub async fn status(&self, token: &str) -> Result<ClaimStatus> {
        self.require_enabled()?;
        if !well_formed(token) {
            return Ok(ClaimStatus::Unknown);
        }
        let row =
            claimables::by_token(self.ctx.store().pool(), &pgfleet_auth::hash_token(token)).await?;
        Ok(self.status_of(row.as_ref()))
    }

    fn status_of(&self, row: Option<&ClaimableRow>) -> ClaimStatus {
        match row {
            None => ClaimStatus::Unknown,
            Some(r) if r.claimed_at.is_some() => ClaimStatus::Claimed,
            Some(r) if r.reaped_at.is_some() || r.expires_at <= self.ctx.clock().now() => {
                ClaimStatus::Expired
            }
            Some(r) => ClaimStatus::Open {
                expires_at: r.expires_at,
            },
        }
    }

    /// Moves the database `token` names into the workspace of `access` (a console member's),
    /// once: the token is spent, and an expired one refused.
    pub async fn claim(&self, access: &WorkspaceWideWrite, token: &str) -> Result<Project> {
        self.require_enabled()?;
        let to = access.principal().workspace_id().to_string();
        let holding = self.holding_workspace().await?;
        let mut tx = self.ctx.store().begin().await?;
        let row = if well_formed(token) {
            claimables::lock_by_token(&mut tx, &pgfleet_auth::hash_token(token)).await?
        } else {
            None
        };
        match self.status_of(row.as_ref()) {
            ClaimStatus::Open { .. } => {}
            ClaimStatus::Claimed => {
                return Err(DomainError::conflict(
                    "This database has already been claimed",
                    Some("A claim link works once.".to_string()),
                ))
            }
            ClaimStatus::Expired => {
                return Err(DomainError::conflict(
                    "This temporary database has expired and is deleted",
                    Some("Create a new one with `npx create-db`.".to_string()),
                ))
            }
            ClaimStatus::Unknown => return Err(DomainError::not_found("Claim link", "given")),
        }
        let row = row.ok_or_else(|| DomainError::internal("claimable row vanished"))?;
        let project = projects::get(&mut *tx, &holding, &row.project_id)
            .await?
            .ok_or_else(|| DomainError::not_found("Project", &row.project_id))?;
        let gone = self.ctx.projects().move_to(&mut tx, &project, &to).await?;
        claimables::mark_claimed(&mut *tx, &row.project_id, &to, self.ctx.clock().now()).await?;
        tx.commit().await.map_err(StorageError::from)?;
        for token in &gone {
            self.ctx.auth_cache().evict_service_token(token);
        }
        self.ctx.note_write();
        tracing::info!(project = %row.project_id, to = %to, "claimable database claimed");
        self.ctx.projects().get(access, &row.project_id).await
    }

    /// Open claimable databases, soonest expiry first (at most 100; server administrators).
    pub async fn open(&self, _admin: &crate::ServerAdmin) -> Result<Vec<OpenClaimable>> {
        Ok(claimables::open(self.ctx.store().pool(), 100)
            .await?
            .into_iter()
            .map(|r| OpenClaimable {
                project_id: r.project_id,
                client_addr: r.client_addr,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// One reaper round: deletes up to [`REAP_BATCH`] expired unclaimed databases (each
    /// through the projects' delete, committed with its `reaped_at`), then forgets closed
    /// rows past the rate window. A database still provisioning waits for the next round.
    pub async fn reap(&self) -> Result<usize> {
        let now = self.ctx.clock().now();
        let due = claimables::due(self.ctx.store().pool(), now, REAP_BATCH).await?;
        let mut reaped = 0;
        if !due.is_empty() {
            let holding = self.holding_workspace().await?;
            for r in due {
                match self.reap_one(&holding, &r.project_id, now).await {
                    Ok(true) => reaped += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(project = %r.project_id, error = %e, "claimable database not reaped yet");
                    }
                }
            }
        }
        claimables::forget_closed(self.ctx.store().pool(), now - chrono_duration(RATE_WINDOW))
            .await?;
        Ok(reaped)
    }

    async fn reap_one(&self, holding: &str, project_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.ctx.store().begin().await?;
        // Locked first, as a claim does: a claim and a reap of one database take turns.
        let Some(row) = claimables::lock_by_project(&mut tx, project_id).await? else {
            return Ok(false);
        };
        if row.claimed_at.is_some() || row.reaped_at.is_some() || row.expires_at > now {
            return Ok(false);
        }
        let ops = match projects::get(&mut *tx, holding, project_id).await? {
            Some(project) => self.ctx.projects().plan_delete(&mut tx, &project).await?,
            None => Vec::new(),
        };
        claimables::mark_reaped(&mut *tx, project_id, now).await?;
        self.ctx.commit_intent(tx, ops, Run::Background).await?;
        tracing::info!(project = %project_id, "expired claimable database deleted");
        Ok(true)
    }

    /// Runs [`Self::reap`] once per `reap_every` across replicas (under its lease) until
    /// `shutdown` turns true; nothing when claimable databases are off.
    pub fn spawn_reaper(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.enabled() {
            return None;
        }
        let ctx = std::sync::Arc::clone(self.ctx);
        let every = self.settings().reap_every;
        Some(tokio::spawn(async move {
            let mut periodic = Periodic::new(&ctx, Job::ClaimableReaper, every, shutdown);
            while periodic.next().await {
                match periodic.run(ctx.claimable().reap()).await {
                    None => return,
                    Some(Err(e)) => tracing::warn!(error = %e, "claimable reaper"),
                    Some(Ok(_)) => {}
                }
            }
        }))
    }

    /// The holding workspace's id, made at first use (two replicas racing agree on one: the
    /// setting is written only if absent, in the workspace's transaction).
    async fn holding_workspace(&self) -> Result<String> {
        if let Some(id) = self.read_holding().await? {
            return Ok(id);
        }
        let now = self.ctx.clock().now();
        let id = new_id(WORKSPACE, self.ctx.rng());
        let mut tx = self.ctx.store().begin().await?;
        workspaces::insert(&mut *tx, &id, HOLDING_NAME, now).await?;
        let fresh = put_setting(
            &mut *tx,
            HOLDING_KEY,
            &serde_json::json!({ "id": id }),
            now,
            false,
        )
        .await?;
        if fresh {
            tx.commit().await.map_err(StorageError::from)?;
            return Ok(id);
        }
        drop(tx);
        self.read_holding()
            .await?
            .ok_or_else(|| DomainError::internal("the holding workspace's setting vanished"))
    }

    async fn read_holding(&self) -> Result<Option<String>> {
        Ok(get_setting(self.ctx.store().pool(), HOLDING_KEY)
            .await?
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string)))
    }
}

/// A claim token as this server makes them (anything else is unknown without a lookup).
fn well_formed(token: &str) -> bool {
    token.strip_prefix(CLAIM_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_this_server_are_looked_up() {
        let t = format!("{CLAIM_TOKEN_PREFIX}{}", "a".repeat(43));
        assert!(well_formed(&t));
        assert!(!well_formed("pgfcl_short"));
        assert!(!well_formed(&format!("pgfst_{}", "a".repeat(43))));
        assert!(!well_formed(&format!(
            "{CLAIM_TOKEN_PREFIX}{}",
            "a/".repeat(21) + "a"
        )));
    }
}
