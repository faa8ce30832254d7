//! First-start bootstrap: an admin user, a default workspace and a service token for it.
//! Runs once per metadata store, ever: a `bootstrapped` setting written in the same
//! transaction guards it, also against two replicas starting at once.

use pgfleet_storage::{put_setting, tokens, users, workspaces};

use crate::ids::{new_id, SERVICE_TOKEN, USER, WORKSPACE};
use crate::{DomainError, Result, Services};

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub admin_email: String,
    /// Use this value as the service token instead of generating one.
    pub token: Option<String>,
}

/// Secrets created at bootstrap; shown once.
pub struct BootstrapSecrets {
    pub admin_email: String,
    pub admin_password: String,
    pub workspace_id: String,
    pub token: String,
}

impl std::fmt::Debug for BootstrapSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapSecrets")
            .field("admin_email", &self.admin_email)
            .field("workspace_id", &self.workspace_id)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Bootstraps if this store never was. `persist` is called with the secrets before the
    /// transaction commits, so a crash can never leave a bootstrapped store whose secrets
    /// nobody saw; if `persist` fails, nothing is committed.
    pub async fn bootstrap(
        &self,
        opts: &BootstrapOptions,
        persist: impl FnOnce(&BootstrapSecrets) -> std::io::Result<()>,
    ) -> Result<Option<BootstrapSecrets>> {
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let fresh = put_setting(
            &mut *tx,
            "bootstrapped",
            &serde_json::json!({ "at": now }),
            now,
            false,
        )
        .await?;
        if !fresh {
            return Ok(None);
        }
        let email = opts.admin_email.trim().to_string();
        if !email.contains('@') {
            return Err(DomainError::bad_request(format!(
                "admin e-mail {email:?} is not an e-mail address"
            )));
        }
        let password = self.rng().with(pgfleet_auth::random_password);
        let password_hash = self
            .hash_gate()
            .hash_password(&password, self.rng())
            .await?;
        let token = match &opts.token {
            Some(t) if t.trim().len() >= 16 => t.trim().to_string(),
            Some(_) => {
                return Err(DomainError::bad_request(
                    "PGFLEET_BOOTSTRAP_TOKEN must be at least 16 characters",
                ))
            }
            None => {
                self.rng()
                    .with(|r| pgfleet_auth::generate_token(pgfleet_auth::SERVICE_TOKEN_PREFIX, r))
                    .plaintext
            }
        };
        let user_id = new_id(USER, self.rng());
        let ws_id = new_id(WORKSPACE, self.rng());
        let token_id = new_id(SERVICE_TOKEN, self.rng());
        users::insert(
            &mut *tx,
            &user_id,
            &email,
            Some("Admin"),
            &password_hash,
            now,
        )
        .await?;
        users::set_admin(&mut *tx, &user_id, true).await?;
        workspaces::insert(&mut *tx, &ws_id, "Default Workspace", now).await?;
        workspaces::add_member(&mut *tx, &ws_id, &user_id, "admin", now).await?;
        tokens::insert(
            &mut *tx,
            &tokens::NewServiceToken {
                id: &token_id,
                workspace_id: &ws_id,
                name: "bootstrap",
                token_hash: &pgfleet_auth::hash_token(&token),
                value_hint: &pgfleet_auth::value_hint(&token),
                created_by_user_id: Some(&user_id),
                created_at: now,
                expires_at: None,
                project_id: None,
                read_only: false,
            },
        )
        .await?;
        let secrets = BootstrapSecrets {
            admin_email: email,
            admin_password: password,
            workspace_id: ws_id,
            token,
        };
        persist(&secrets)
            .map_err(|e| DomainError::internal(format!("writing the bootstrap file: {e}")))?;
        tx.commit()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        Ok(Some(secrets))
    }
}
