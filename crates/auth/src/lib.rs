//! Secrets and how they are checked: bearer tokens (generated with a recognisable prefix and
//! 32 random bytes, stored only as a SHA-256 hash), user passwords (argon2id) and
//! constant-time comparison; and secrets sealed under a bearer key ([`sealed`]).
//!
//! Randomness comes in through [`rand::RngCore`] so tests can make it deterministic.

pub mod sealed;

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

/// Bytes of a password salt.
pub const SALT_BYTES: usize = 16;

/// A fresh random salt for [`hash_password_with_salt`].
pub fn new_salt(rng: &mut dyn RngCore) -> [u8; SALT_BYTES] {
    let mut salt = [0u8; SALT_BYTES];
    rng.fill_bytes(&mut salt);
    salt
}

/// argon2id PHC string of a password.
pub fn hash_password(password: &str, rng: &mut dyn RngCore) -> Result<String, AuthError> {
    hash_password_with_salt(password, &new_salt(rng))
}

/// argon2id PHC string of a password with a given salt: the slow part, which needs no
/// generator (so no lock on one is held while it runs).
pub fn hash_password_with_salt(
    password: &str,
    salt: &[u8; SALT_BYTES],
) -> Result<String, AuthError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// The working memory of one argon2 computation with pgfleet's parameters (about 19 MiB),
/// kept and reused by a hashing thread: allocating it per call is what made memory grow
/// (glibc did not reuse the freed, 64-byte-aligned blocks; measured: +19 MiB per call).
pub struct HashMemory(Vec<argon2::Block>);

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.0.len())
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        Self(vec![
            argon2::Block::default();
            argon2::Params::default().block_count()
        ])
    }
}

/// [`hash_password_with_salt`] in `memory`: the same PHC string, no allocation of its own.
pub fn hash_password_in(
    memory: &mut HashMemory,
    password: &str,
    salt: &[u8; SALT_BYTES],
) -> Result<String, AuthError> {
    use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
    let err = |e: argon2::password_hash::Error| AuthError::Hash(e.to_string());
    let params = argon2::Params::default();
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let salt_string = SaltString::encode_b64(salt).map_err(err)?;
    let len = params
        .output_len()
        .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory.0)?)
    })
    .map_err(err)?;
    Ok(PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(err)?,
        salt: Some(salt_string.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// [`verify_password`] in `memory`. A hash that needs more memory than pgfleet's
/// parameters (pgfleet never makes one) does not match: checking it would allocate what its
/// string asks for.
pub fn verify_password_in(memory: &mut HashMemory, password: &str, phc: &str) -> bool {
    use argon2::password_hash::{Output, PasswordHash};
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    if params.block_count() > memory.0.len() {
        return false;
    }
    let argon = argon2::Argon2::new(algorithm, version, params);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory.0)?)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|c| c == expected)
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

    #[test]
    fn reused_memory_gives_the_same_hashes() {
        let mut mem = HashMemory::default();
        let salt = [9u8; SALT_BYTES];
        let phc = hash_password_in(&mut mem, "correct horse", &salt).unwrap();
        assert_eq!(
            phc,
            hash_password_with_salt("correct horse", &salt).unwrap()
        );
        assert!(verify_password_in(&mut mem, "correct horse", &phc));
        assert!(!verify_password_in(&mut mem, "correct horsf", &phc));
        assert!(!verify_password_in(&mut mem, "correct horse", "not a hash"));
        // A hash asking for more memory than pgfleet's is not checked.
        let big = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64 * 1024, 1, 1, None).unwrap(),
        );
        use argon2::password_hash::{PasswordHasher, SaltString};
        let big_phc = big
            .hash_password(b"pw", &SaltString::encode_b64(&salt).unwrap())
            .unwrap()
            .to_string();
        assert!(verify_password("pw", &big_phc));
        assert!(!verify_password_in(&mut mem, "pw", &big_phc));
    }
}
