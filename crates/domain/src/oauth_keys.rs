//! The access-token signing key: Ed25519 (JWS `EdDSA`), generated at first start with ring,
//! kept in the metadata store so every replica signs and verifies with the same key, and
//! published as a JWKS.
//!
//! The private key is stored as PKCS#8 PEM in the metadata database: it must be usable by
//! every replica, and the store is already the root of trust for every other secret's hash.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pgfleet_storage::{oauth, Store};
use ring::signature::KeyPair as _;
use serde::{de::DeserializeOwned, Serialize};

use crate::{DomainError, Result};

pub struct Signer {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads the current key, creating one at first start.
    pub async fn load_or_create(store: &Store, now: chrono::DateTime<chrono::Utc>) -> Result<Self> {
        if oauth::current_signing_key(store.pool()).await?.is_none() {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| DomainError::internal("cannot generate an Ed25519 key"))?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| DomainError::internal("cannot read the generated Ed25519 key"))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = URL_SAFE_NO_PAD.encode(&pgfleet_auth::hash_token(&x)[..12]);
            let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA" });
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(pkcs8.as_ref())
            );
            oauth::insert_signing_key(store.pool(), &kid, "EdDSA", &pem, &jwk, now).await?;
        }
        let row = oauth::current_signing_key(store.pool())
            .await?
            .ok_or_else(|| DomainError::internal("no signing key"))?;
        let encoding =
            EncodingKey::from_ed_pem(row.private_pem.as_bytes()).map_err(DomainError::internal)?;
        let x = row
            .public_jwk
            .get("x")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let decoding = DecodingKey::from_ed_components(x).map_err(DomainError::internal)?;
        Ok(Self {
            kid: row.kid,
            encoding,
            decoding,
        })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(DomainError::internal)
    }

    /// Verifies the signature and issuer only; expiry is checked by the caller against the
    /// injected clock.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, issuer: &str) -> Option<T> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[issuer]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}
