//! The access-token signing key: Ed25519 (JWS `EdDSA`), generated at first start with ring,
//! kept in the metadata store so every replica signs and verifies with the same key, and
//! published as a JWKS.
//!
//! The private key is stored encrypted (AES-256-GCM under a key derived with HKDF-SHA256
//! from a [`KeySecret`] kept outside the database, the key id as associated data), so a dump
//! or backup of the metadata database does not give away the power to mint tokens. A key
//! written in plain text by an older version is encrypted in place at the next start.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pgfleet_storage::{oauth, Store};
use ring::signature::KeyPair as _;
use serde::{de::DeserializeOwned, Serialize};

use crate::{DomainError, Result};

/// The secret that encrypts the signing key at rest; every replica needs the same one.
#[derive(Clone)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// The key other secrets are sealed under ([`pgfleet_auth::sealed`], e.g. webhook
    /// signing secrets): this secret as text. The sealing derives its own AES key from it
    /// with HKDF under another label than the signing key's, and a salt per secret.
    pub fn seal_key(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// A new random secret as text (32 bytes, base64), to be kept in a file.
    pub fn generate_text() -> Result<String> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| DomainError::internal("no randomness for a key-encryption key"))?;
        Ok(STANDARD.encode(bytes))
    }
}

impl KeySecret {
    /// A secret of `len` bytes for `purpose` and `context`, derived (HKDF-SHA256) from this
    /// one: the same on every replica, never stored, different for each purpose.
    pub(crate) fn derive(&self, purpose: &'static [u8], context: &[u8]) -> Result<Vec<u8>> {
        use ring::hkdf;
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, purpose).extract(&self.0);
        let info = [context];
        let okm = prk
            .expand(&info, Len(32))
            .map_err(|_| DomainError::internal("cannot derive a secret"))?;
        let mut out = vec![0u8; 32];
        okm.fill(&mut out)
            .map_err(|_| DomainError::internal("cannot derive a secret"))?;
        Ok(out)
    }
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

/// Marks an encrypted private key: base64 of nonce, ciphertext and tag follow.
const SEALED: &str = "pgfleet-aes256gcm-v1:";

fn aead_key(secret: &KeySecret) -> Result<ring::aead::LessSafeKey> {
    use ring::{aead, hkdf};
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"pgfleet oauth signing key").extract(&secret.0);
    let okm = prk
        .expand(&[b"v1"], &aead::AES_256_GCM)
        .map_err(|_| DomainError::internal("cannot derive the key-encryption key"))?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

fn seal(secret: &KeySecret, kid: &str, pem: &str) -> Result<String> {
    use ring::aead::{Aad, Nonce, NONCE_LEN};
    use ring::rand::SecureRandom as _;
    let mut nonce = [0u8; NONCE_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| DomainError::internal("no randomness for a nonce"))?;
    let mut data = pem.as_bytes().to_vec();
    aead_key(secret)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut data,
        )
        .map_err(|_| DomainError::internal("cannot encrypt the signing key"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(format!("{SEALED}{}", STANDARD.encode(out)))
}

fn open(secret: &KeySecret, kid: &str, sealed: &str) -> Result<String> {
    use ring::aead::{Aad, Nonce, NONCE_LEN};
    let wrong = || {
        DomainError::internal(
            "cannot decrypt the OAuth signing key kept in the metadata database: it was \
             encrypted with another oauth.key_encryption_key (every server sharing a metadata \
             database needs the same one)",
        )
    };
    let mut raw = STANDARD.decode(sealed).map_err(|_| wrong())?;
    if raw.len() < NONCE_LEN {
        return Err(wrong());
    }
    let mut data = raw.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&raw).map_err(|_| wrong())?;
    let plain = aead_key(secret)?
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut data)
        .map_err(|_| wrong())?;
    String::from_utf8(plain.to_vec()).map_err(|_| wrong())
}

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
    pub async fn load_or_create(
        store: &Store,
        now: chrono::DateTime<chrono::Utc>,
        secret: &KeySecret,
    ) -> Result<Self> {
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
            let sealed = seal(secret, &kid, &pem)?;
            oauth::insert_signing_key(store.pool(), &kid, "EdDSA", &sealed, &jwk, now).await?;
        }
        let row = oauth::current_signing_key(store.pool())
            .await?
            .ok_or_else(|| DomainError::internal("no signing key"))?;
        let pem = match row.private_pem.strip_prefix(SEALED) {
            Some(sealed) => open(secret, &row.kid, sealed)?,
            None => {
                // Kept in plain text by an older version: encrypt it now.
                let sealed = seal(secret, &row.kid, &row.private_pem)?;
                oauth::replace_signing_key_private(
                    store.pool(),
                    &row.kid,
                    &row.private_pem,
                    &sealed,
                )
                .await?;
                tracing::info!(kid = %row.kid, "encrypted the OAuth signing key at rest");
                row.private_pem.clone()
            }
        };
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(DomainError::internal)?;
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

#[cfg(test)]
mod tests {
    use super::{open, seal, KeySecret, SEALED};

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let secret = KeySecret::new(b"one secret".to_vec());
        let sealed = seal(&secret, "kid1", "PEM TEXT").unwrap();
        let body = sealed.strip_prefix(SEALED).unwrap();
        assert!(!sealed.contains("PEM TEXT"));
        assert_eq!(open(&secret, "kid1", body).unwrap(), "PEM TEXT");
        assert!(open(&KeySecret::new(b"another".to_vec()), "kid1", body).is_err());
        assert!(open(&secret, "kid2", body).is_err());
        assert!(open(&secret, "kid1", "not base64!").is_err());
        assert_ne!(
            seal(&secret, "kid1", "PEM TEXT").unwrap(),
            sealed,
            "fresh nonce"
        );
        assert_eq!(format!("{secret:?}"), "KeySecret(<redacted>)");
    }
}
