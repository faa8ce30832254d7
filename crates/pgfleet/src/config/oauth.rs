//! `[oauth]`: the OAuth 2.0 authorization server's settings, their defaults and validation,
//! and the secret that encrypts its signing key.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Secret};

/// The OAuth 2.0 authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Base URL of `/authorize`, `/token`… and the tokens' `iss`; default `public_url`.
    pub issuer: Option<String>,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Secret that encrypts the token-signing key in the metadata database; default: one
    /// generated into `<data_dir>/secrets/oauth-key-encryption-key`. Servers sharing an
    /// external metadata database must all be given the same one.
    pub key_encryption_key: Option<Secret>,
    pub key_encryption_key_file: Option<PathBuf>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            access_token_ttl_secs: 3600,
            key_encryption_key: None,
            key_encryption_key_file: None,
        }
    }
}

impl OAuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .key_encryption_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err(ConfigError::Invalid(
                "oauth.key_encryption_key must be at least 16 characters (32 random bytes, base64, are best)"
                    .to_string(),
            ));
        }
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > 86_400 {
            return Err(ConfigError::Invalid(
                "oauth.access_token_ttl_secs must be 1 to 86400".to_string(),
            ));
        }
        if let Some(u) = &self.issuer {
            url::Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("oauth.issuer {u:?}: {e}")))?;
        }
        Ok(())
    }
}

impl Config {
    /// The secret encrypting the OAuth signing key: configured, else the one kept in the
    /// data directory (created, mode 0600, at first use).
    pub fn oauth_key_secret(&self) -> anyhow::Result<pgfleet_domain::oauth_keys::KeySecret> {
        use anyhow::Context as _;
        if let Some(s) = &self.oauth.key_encryption_key {
            return Ok(pgfleet_domain::oauth_keys::KeySecret::new(
                s.expose().as_bytes().to_vec(),
            ));
        }
        let dir = self.data_dir.join("secrets");
        let path = dir.join("oauth-key-encryption-key");
        if let Ok(s) = std::fs::read_to_string(&path) {
            return Ok(pgfleet_domain::oauth_keys::KeySecret::new(
                s.trim().as_bytes().to_vec(),
            ));
        }
        crate::private_file::create_dir(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let value = pgfleet_domain::oauth_keys::KeySecret::generate_text()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::private_file::write(&path, value.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(pgfleet_domain::oauth_keys::KeySecret::new(
            value.into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides, Secret};

    #[test]
    fn oauth_key_encryption_key_from_a_file_hidden_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("kek");
        std::fs::write(&secret, "a key-encryption secret\n").unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            format!(
                "[oauth]\nkey_encryption_key_file = {:?}\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(
            cfg.oauth.key_encryption_key.as_ref().map(Secret::expose),
            Some("a key-encryption secret")
        );
        assert!(!cfg.to_toml().contains("key-encryption secret"));
        std::fs::write(&file, "[oauth]\nkey_encryption_key = \"short\"\n").unwrap();
        let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("at least 16 characters"), "{e}");
    }
}
