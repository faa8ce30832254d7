//! OAuth clients (apps), grants (integrations), codes, token families and refresh tokens,
//! signing keys. Every secret is stored as a SHA-256 hash. Queries checked at build time
//! (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub seq: i64,
    pub id: String,
    /// `None` for a client registered at the registration endpoint (RFC 7591).
    pub workspace_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub redirect_uris: Vec<String>,
    pub client_type: String,
    pub secret_hash: Option<Vec<u8>>,
    pub created_by_user_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub seq: i64,
    pub id: String,
    pub client_id: String,
    pub workspace_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A grant with the names an integration view needs.
#[derive(Debug, Clone)]
pub struct IntegrationRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub client_id: String,
    pub client_name: String,
    pub client_created_at: DateTime<Utc>,
    pub user_id: String,
    pub user_email: String,
    pub user_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub family_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub grant_id: String,
    pub family_id: String,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_pem: String,
    pub public_jwk: serde_json::Value,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub async fn insert_client<'e>(ex: impl sqlx::PgExecutor<'e>, c: &ClientRow) -> Result<ClientRow> {
    Ok(sqlx::query_as!(
        ClientRow,
        "INSERT INTO oauth_clients (id, workspace_id, name, description, redirect_uris, client_type, secret_hash,
                                    created_by_user_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq, id, workspace_id, name, description, redirect_uris, client_type, secret_hash, created_by_user_id, created_at",
        c.id,
        c.workspace_id,
        c.name,
        c.description,
        c.redirect_uris.as_slice(),
        c.client_type,
        c.secret_hash,
        c.created_by_user_id,
        c.created_at,
    )
    .fetch_one(ex)
    .await?)
}

/// Clients registered at the registration endpoint: in all, and since `since` (the caps of
/// dynamic registration).
pub async fn count_dynamic_clients<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    since: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE created_at >= $1) AS "recent!"
             FROM oauth_clients WHERE workspace_id IS NULL"#,
        since,
    )
    .fetch_one(ex)
    .await?;
    Ok((r.total, r.recent))
}

pub async fn get_client<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<ClientRow>> {
    Ok(sqlx::query_as!(
        ClientRow,
        "SELECT seq, id, workspace_id, name, description, redirect_uris, client_type, secret_hash, created_by_user_id, created_at FROM oauth_clients WHERE id = $1",
        id,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn list_clients<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
) -> Result<Vec<ClientRow>> {
    Ok(sqlx::query_as!(
        ClientRow,
        "SELECT seq, id, workspace_id, name, description, redirect_uris, client_type, secret_hash, created_by_user_id, created_at FROM oauth_clients WHERE workspace_id = $1 ORDER BY seq",
        workspace_id,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn update_client<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    name: &str,
    description: Option<&str>,
    redirect_uris: &[String],
) -> Result<()> {
    sqlx::query!(
        "UPDATE oauth_clients SET name = $2, description = $3, redirect_uris = $4 WHERE id = $1",
        id,
        name,
        description,
        redirect_uris,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete_client<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<bool> {
    let r = sqlx::query!("DELETE FROM oauth_clients WHERE id = $1", id,)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The live grant of (client, workspace, user), created or widened to `scopes`.
pub async fn upsert_grant<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    new_id: &str,
    client_id: &str,
    workspace_id: &str,
    user_id: &str,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<GrantRow> {
    Ok(sqlx::query_as!(
        GrantRow,
        "INSERT INTO oauth_grants (id, client_id, workspace_id, user_id, scopes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (client_id, workspace_id, user_id) WHERE revoked_at IS NULL
         DO UPDATE SET scopes = ARRAY(SELECT DISTINCT unnest(oauth_grants.scopes || EXCLUDED.scopes) ORDER BY 1)
         RETURNING seq, id, client_id, workspace_id, user_id, scopes, created_at, revoked_at",
        new_id,
        client_id,
        workspace_id,
        user_id,
        scopes,
        now,
    )
    .fetch_one(ex)
    .await?)
}

pub async fn get_grant<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<GrantRow>> {
    Ok(sqlx::query_as!(
        GrantRow,
        "SELECT seq, id, client_id, workspace_id, user_id, scopes, created_at, revoked_at FROM oauth_grants WHERE id = $1",
        id,
    )
    .fetch_optional(ex)
    .await?)
}

/// Revokes the given grants (and so every family and token issued under them).
pub async fn revoke_grants<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    client_id: Option<&str>,
    grant_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let rows = sqlx::query_scalar!(
        "UPDATE oauth_grants SET revoked_at = $4
          WHERE workspace_id = $1 AND revoked_at IS NULL
            AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR id = $3)
          RETURNING id",
        workspace_id,
        client_id,
        grant_id,
        now,
    )
    .fetch_all(ex)
    .await?;
    Ok(rows)
}

/// Live integrations of a workspace, in creation order.
pub async fn list_integrations<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<IntegrationRow>> {
    Ok(sqlx::query_as!(
        IntegrationRow,
        "SELECT g.seq, g.id, g.workspace_id, g.scopes, g.created_at, c.id AS client_id, c.name AS client_name,
            c.created_at AS client_created_at, u.id AS user_id, u.email AS user_email, u.name AS user_name
       FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id JOIN users u ON u.id = g.user_id WHERE g.workspace_id = $1 AND g.revoked_at IS NULL AND g.seq > $2 ORDER BY g.seq LIMIT $3",
        workspace_id,
        after.unwrap_or(0),
        limit,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn get_integration<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<IntegrationRow>> {
    Ok(sqlx::query_as!(
        IntegrationRow,
        "SELECT g.seq, g.id, g.workspace_id, g.scopes, g.created_at, c.id AS client_id, c.name AS client_name,
            c.created_at AS client_created_at, u.id AS user_id, u.email AS user_email, u.name AS user_name
       FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id JOIN users u ON u.id = g.user_id WHERE g.workspace_id = $1 AND g.id = $2 AND g.revoked_at IS NULL",
        workspace_id,
        id,
    )
    .fetch_optional(ex)
    .await?)
}

#[expect(clippy::too_many_arguments, reason = "one column each")]
pub async fn insert_code<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    code_hash: &[u8],
    grant_id: &str,
    client_id: &str,
    redirect_uri: &str,
    code_challenge: &str,
    scopes: &[String],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        code_hash,
        grant_id,
        client_id,
        redirect_uri,
        code_challenge,
        scopes,
        now,
        expires_at,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Locks a code row for its exchange.
pub async fn lock_code<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    code_hash: &[u8],
) -> Result<Option<CodeRow>> {
    Ok(sqlx::query_as!(
        CodeRow,
        "SELECT grant_id, client_id, redirect_uri, code_challenge, scopes, expires_at, used_at, family_id
           FROM oauth_codes WHERE code_hash = $1 FOR UPDATE",
        code_hash,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn use_code<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    code_hash: &[u8],
    family_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE oauth_codes SET used_at = $2, family_id = $3 WHERE code_hash = $1",
        code_hash,
        now,
        family_id,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn insert_family<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    grant_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO oauth_families (id, grant_id, created_at) VALUES ($1, $2, $3)",
        id,
        grant_id,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Revokes every live grant a user gave in a workspace (when they leave it); their ids.
pub async fn revoke_user_grants<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let rows = sqlx::query_scalar!(
        "UPDATE oauth_grants SET revoked_at = $3
          WHERE workspace_id = $1 AND user_id = $2 AND revoked_at IS NULL
          RETURNING id",
        workspace_id,
        user_id,
        now,
    )
    .fetch_all(ex)
    .await?;
    Ok(rows)
}

pub async fn revoke_family<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE oauth_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        id,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether access tokens of this family are still good: family and grant live, and the
/// user who granted it still a member of the workspace.
pub async fn family_alive<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    family_id: &str,
) -> Result<Option<GrantRow>> {
    Ok(sqlx::query_as!(
        GrantRow,
        "SELECT g.seq, g.id, g.client_id, g.workspace_id, g.user_id, g.scopes, g.created_at, g.revoked_at
           FROM oauth_families f JOIN oauth_grants g ON g.id = f.grant_id
          WHERE f.id = $1 AND f.revoked_at IS NULL AND g.revoked_at IS NULL
            AND EXISTS (SELECT 1 FROM memberships m
                         WHERE m.workspace_id = g.workspace_id AND m.user_id = g.user_id)",
        family_id,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn insert_refresh<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    token_hash: &[u8],
    grant_id: &str,
    family_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, family_id, created_at) VALUES ($1, $2, $3, $4)",
        token_hash,
        grant_id,
        family_id,
        now,
    )
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn lock_refresh<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>> {
    Ok(sqlx::query_as!(
        RefreshRow,
        "SELECT grant_id, family_id, used_at, revoked_at FROM oauth_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn use_refresh<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE oauth_refresh_tokens SET used_at = $2 WHERE token_hash = $1",
        token_hash,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn current_signing_key<'e>(
    ex: impl sqlx::PgExecutor<'e>,
) -> Result<Option<SigningKeyRow>> {
    Ok(sqlx::query_as!(
        SigningKeyRow,
        "SELECT kid, algorithm, private_pem, public_jwk FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn public_jwks<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<serde_json::Value>> {
    let rows = sqlx::query_scalar!("SELECT public_jwk FROM signing_keys ORDER BY created_at DESC",)
        .fetch_all(ex)
        .await?;
    Ok(rows)
}

/// Inserts a signing key unless one exists already (two replicas starting at once).
pub async fn insert_signing_key<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    kid: &str,
    algorithm: &str,
    private_pem: &str,
    public_jwk: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, created_at)
         SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        kid,
        algorithm,
        private_pem,
        public_jwk,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Replaces the stored private key of `kid` (e.g. with its encrypted form), only if it is
/// still `old` (another replica may have done it first).
pub async fn replace_signing_key_private<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    kid: &str,
    old: &str,
    new: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE signing_keys SET private_pem = $3 WHERE kid = $1 AND private_pem = $2",
        kid,
        old,
        new,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes authorization codes that can no longer do anything: expired and either never
/// used, or used by a family that is no longer alive. An expired code that was used by a
/// live family is kept: presenting it again still revokes that family (reuse detection).
pub async fn delete_dead_codes<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM oauth_codes c
          WHERE c.expires_at <= $1
            AND (c.used_at IS NULL
                 OR NOT EXISTS (SELECT 1 FROM oauth_families f JOIN oauth_grants g ON g.id = f.grant_id
                                 WHERE f.id = c.family_id AND f.revoked_at IS NULL AND g.revoked_at IS NULL))",
        now,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes refresh tokens whose family or grant is revoked (revocation is final, so they
/// can never be exchanged again; reuse detection has nothing left to revoke). Tokens of
/// live families are kept, used ones included, for reuse detection.
pub async fn delete_dead_refresh_tokens<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM oauth_refresh_tokens t
          WHERE NOT EXISTS (SELECT 1 FROM oauth_families f JOIN oauth_grants g ON g.id = f.grant_id
                             WHERE f.id = t.family_id AND f.revoked_at IS NULL AND g.revoked_at IS NULL)",
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}
