//! Secrets sealed under a bearer key, for a secret pgfleet must use on behalf of whoever
//! presents the key and must not be able to use otherwise (the login password of a
//! connection's role on a server reached over TCP, used by the `prisma+postgres://`
//! endpoint). The AES-256-GCM key is derived from the bearer key with HKDF-SHA256 and a
//! random salt stored beside the blob; the bearer key itself is stored only as its SHA-256
//! ([`crate::hash_token`]), so the stored salt, blob and hash together do not open the
//! secret. The caller's context (a row id) is authenticated as associated data, so a blob
//! copied to another row does not open there.
//!
//! ring provides the primitives: it is already the workspace's rustls crypto provider.

use rand::RngCore;
use ring::{aead, hkdf};

/// Bytes of random salt per sealed secret.
pub const SEAL_SALT_BYTES: usize = 16;
/// Domain separation of the derived key (a new format gets a new label).
const INFO: &[u8] = b"pgfleet sealed secret v1";
const NONCE_BYTES: usize = aead::NONCE_LEN;

/// A sealed secret as stored: the HKDF salt, and the AES-GCM nonce followed by the
/// ciphertext and its tag.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub salt: Vec<u8>,
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("blob_bytes", &self.blob.len())
            .finish_non_exhaustive()
    }
}

/// Sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Wrong key or context, or a damaged blob (AES-GCM cannot say which).
    #[error("the sealed secret does not open with this key")]
    Open,
    #[error("the secret could not be sealed")]
    Seal,
}

fn derive(key: &str, salt: &[u8]) -> Result<aead::LessSafeKey, ring::error::Unspecified> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key.as_bytes());
    let okm = prk.expand(&[INFO], &aead::AES_256_GCM)?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

/// Seals `secret` under `key`, bound to `context`, with a fresh salt and nonce from `rng`.
pub fn seal(
    key: &str,
    context: &[u8],
    secret: &[u8],
    rng: &mut dyn RngCore,
) -> Result<Sealed, SealError> {
    let mut salt = vec![0u8; SEAL_SALT_BYTES];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut nonce);
    let sealing = derive(key, &salt).map_err(|_| SealError::Seal)?;
    let mut body = secret.to_vec();
    sealing
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(context),
            &mut body,
        )
        .map_err(|_| SealError::Seal)?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&body);
    Ok(Sealed { salt, blob })
}

/// Opens what [`seal`] sealed, with the same key and context.
pub fn unseal(key: &str, context: &[u8], sealed: &Sealed) -> Result<Vec<u8>, SealError> {
    if sealed.blob.len() < NONCE_BYTES + aead::AES_256_GCM.tag_len() {
        return Err(SealError::Open);
    }
    let (nonce, body) = sealed.blob.split_at(NONCE_BYTES);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
    let opening = derive(key, &sealed.salt).map_err(|_| SealError::Open)?;
    let mut body = body.to_vec();
    let plain = opening
        .open_in_place(nonce, aead::Aad::from(context), &mut body)
        .map_err(|_| SealError::Open)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(3)
    }

    #[test]
    fn opens_with_the_key_and_context_only() {
        let s = seal("pgfa_key", b"conn_1", b"role password", &mut rng()).unwrap();
        assert_eq!(s.salt.len(), SEAL_SALT_BYTES);
        assert_eq!(unseal("pgfa_key", b"conn_1", &s).unwrap(), b"role password");
        assert_eq!(unseal("pgfa_other", b"conn_1", &s), Err(SealError::Open));
        assert_eq!(unseal("pgfa_key", b"conn_2", &s), Err(SealError::Open));
        let mut damaged = s.clone();
        if let Some(b) = damaged.blob.last_mut() {
            *b ^= 1;
        }
        assert_eq!(
            unseal("pgfa_key", b"conn_1", &damaged),
            Err(SealError::Open)
        );
        let truncated = Sealed {
            salt: s.salt.clone(),
            blob: s.blob[..4].to_vec(),
        };
        assert_eq!(
            unseal("pgfa_key", b"conn_1", &truncated),
            Err(SealError::Open)
        );
    }

    #[test]
    fn the_blob_does_not_contain_the_secret_and_differs_each_time() {
        let secret = b"a-password-long-enough-to-find";
        let mut r = rng();
        let a = seal("k", b"c", secret, &mut r).unwrap();
        let b = seal("k", b"c", secret, &mut r).unwrap();
        assert!(!a.blob.windows(secret.len()).any(|w| w == secret));
        assert_ne!(a.blob, b.blob);
        assert_ne!(a.salt, b.salt);
    }
}
