//! Secrets and how they are checked: bearer tokens (generated with a recognisable prefix and
//! 32 random bytes, stored only as a SHA-256 hash), user passwords (argon2id) and
//! constant-time comparison.
//!
//! Randomness comes in through [`rand::RngCore`] so tests can make it deterministic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of service tokens: recognisable in logs and by secret scanners.
pub const SERVICE_TOKEN_PREFIX: &str = "pgfst_";

/// Bytes of entropy in every generated token or password.
pub const SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A freshly generated secret: the plaintext is shown once, only `hash` is stored.
pub struct NewSecret {
    pub plaintext: String,
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("plaintext", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `prefix` + base64url of [`SECRET_BYTES`] random bytes.
pub fn generate_token(prefix: &str, rng: &mut dyn RngCore) -> NewSecret {
    let plaintext = format!("{prefix}{}", random_string(rng));
    let hash = hash_token(&plaintext);
    NewSecret { plaintext, hash }
}

/// base64url (no padding) of [`SECRET_BYTES`] random bytes: 43 URL- and shell-safe characters.
pub fn random_string(rng: &mut dyn RngCore) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random password: 32 bytes as hex-free alphanumerics so it needs no escaping in URLs.
pub fn random_password(rng: &mut dyn RngCore) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // 43 characters of a 62-letter alphabet carry > 256 bits.
    (0..43)
        .map(|_| {
            // Rejection sampling keeps the distribution uniform.
            loop {
                let b = (rng.next_u32() & 0xff) as u8;
                if (b as usize) < ALPHABET.len() * 4 {
                    return ALPHABET[(b as usize) % ALPHABET.len()] as char;
                }
            }
        })
        .collect()
}

/// Tokens carry 256 bits of entropy, so one SHA-256 is enough (no slow hash needed) and lets
/// the store look a token up by its hash.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two byte strings in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A short, non-secret hint of a token for lists: its prefix and last four characters.
pub fn value_hint(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = token.chars().take_while(|c| *c != '_').collect();
    format!("{head}_…{tail}")
}

/// argon2id PHC string of a password.
pub fn hash_password(password: &str, rng: &mut dyn RngCore) -> Result<String, AuthError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against an argon2id PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tokens_have_prefix_entropy_and_stable_hash() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t = generate_token(SERVICE_TOKEN_PREFIX, &mut rng);
        assert!(t.plaintext.starts_with(SERVICE_TOKEN_PREFIX));
        assert_eq!(t.plaintext.len(), SERVICE_TOKEN_PREFIX.len() + 43);
        assert_eq!(hash_token(&t.plaintext), t.hash);
        assert!(!format!("{t:?}").contains(&t.plaintext));
        assert_eq!(value_hint("pgfst_abcdefgh"), "pgfst_…efgh");
    }

    #[test]
    fn passwords_roundtrip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let pw = random_password(&mut rng);
        assert_eq!(pw.len(), 43);
        let phc = hash_password(&pw, &mut rng).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password("wrong", &phc));
    }
}
