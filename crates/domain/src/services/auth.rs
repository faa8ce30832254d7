//! Authenticating bearer credentials, with a short-lived in-process cache.
//!
//! Every API request authenticates, so looking the token up in the metadata store each time
//! would double the queries of a cheap read. A resolved service token is cached for
//! [`AUTH_CACHE_TTL`] under the SHA-256 of its value; deleting a token through this process
//! evicts it at once. Another replica may keep accepting a deleted token for at most the TTL.
//! A service token's scope (project, read-only) is read with it and never changes, so the
//! cached principal carries it as is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgfleet_storage::tokens;

use crate::{AuthFailure, CredentialKind, DomainError, Principal, Result, TokenScope};

/// How long a resolved token is trusted without asking the store again.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(2);
/// How often a token's `last_used_at` is written.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    principal: Principal,
    expires_at: Option<DateTime<Utc>>,
    cached_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl AuthCache {
    fn get(&self, hash: &[u8]) -> Option<Entry> {
        let map = self.entries.lock().ok()?;
        map.get(hash)
            .filter(|e| e.cached_at.elapsed() < AUTH_CACHE_TTL)
            .cloned()
    }

    fn put(&self, hash: Vec<u8>, entry: Entry) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, e| e.cached_at.elapsed() < AUTH_CACHE_TTL);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(hash, entry);
        }
    }

    /// Forgets everything (after an OAuth revocation).
    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }

    /// Forgets every cached credential of a service token.
    pub(crate) fn evict_service_token(&self, token_id: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|_, e| !matches!(&e.principal.credential, CredentialKind::ServiceToken { id, .. } if id == token_id));
        }
    }

    /// True when `last_used_at` of this token is due to be written.
    fn should_touch(&self, token_id: &str) -> bool {
        let Ok(mut t) = self.touched.lock() else {
            return false;
        };
        match t.get(token_id) {
            Some(at) if at.elapsed() < TOUCH_EVERY => false,
            _ => {
                if t.len() >= MAX_ENTRIES {
                    t.clear();
                }
                t.insert(token_id.to_string(), Instant::now());
                true
            }
        }
    }
}

use super::service_tokens::Tokens;

impl Tokens<'_> {
    /// Resolves an `Authorization: Bearer` value to a principal. Service tokens are looked up
    /// by the SHA-256 of the presented value (an index probe on a hash, so timing reveals
    /// nothing about stored tokens).
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal> {
        let token = token.trim();
        if token.is_empty() || token.len() > 4096 {
            return Err(DomainError::Unauthenticated(AuthFailure::Malformed));
        }
        let hash = pgfleet_auth::hash_token(token);
        let now = self.ctx.clock().now();
        let entry = match self.ctx.auth_cache().get(&hash) {
            Some(e) => e,
            None if token.starts_with("eyJ") && token.matches('.').count() == 2 => {
                let (principal, exp) = self.ctx.oauth().authenticate_access_token(token).await?;
                let entry = Entry {
                    principal,
                    expires_at: Some(exp),
                    cached_at: Instant::now(),
                };
                self.ctx.auth_cache().put(hash, entry.clone());
                entry
            }
            None => {
                let row = tokens::find_by_hash(self.ctx.store().pool(), &hash)
                    .await?
                    .ok_or(DomainError::Unauthenticated(AuthFailure::Invalid))?;
                let entry = Entry {
                    principal: Principal {
                        workspace_id: row.workspace_id,
                        user_id: row.created_by_user_id,
                        credential: CredentialKind::ServiceToken {
                            id: row.id,
                            name: row.name,
                        },
                        // Immutable per token, so caching it is safe; deleting the token
                        // (or its project) evicts it like before.
                        scope: TokenScope {
                            project_id: row.project_id,
                            read_only: row.read_only,
                        },
                    },
                    expires_at: row.expires_at,
                    cached_at: Instant::now(),
                };
                self.ctx.auth_cache().put(hash, entry.clone());
                entry
            }
        };
        if entry.expires_at.is_some_and(|e| e <= now) {
            return Err(DomainError::Unauthenticated(AuthFailure::Expired));
        }
        if let CredentialKind::ServiceToken { id, .. } = &entry.principal.credential {
            if self.ctx.auth_cache().should_touch(id) {
                if let Err(e) = tokens::touch(self.ctx.store().pool(), id, now).await {
                    tracing::warn!(error = %e, "could not record service token use");
                }
            }
        }
        Ok(entry.principal)
    }
}
