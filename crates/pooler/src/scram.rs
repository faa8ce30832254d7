//! SCRAM-SHA-256 (RFC 5802/7677) on both sides of the proxy, from stored verifiers only.
//!
//! As the **server** the proxy checks a client's proof against the verifier PostgreSQL keeps
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`); no password is needed. A
//! valid proof also reveals the client's `ClientKey` (proof XOR signature), and as the
//! **client** of a backend that holds the same verifier the proxy can answer its challenge
//! with that key. The `ClientKey` lives in memory only, for the life of the pool.
//!
//! Both sides are written here: PostgreSQL's verifier format and the server side are not in
//! `postgres-protocol`, whose client (`ScramSha256`) needs the password rather than the
//! recovered `ClientKey`. The certificate is read with `x509-cert` for
//! `tls-server-end-point`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac};
use subtle::ConstantTimeEq as _;

pub const MECHANISM: &str = "SCRAM-SHA-256";
/// SCRAM with `tls-server-end-point` channel binding (RFC 5929): a proof made through a
/// man in the middle's TLS does not verify, even when the client does not check
/// certificates (`sslmode=require`).
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";
const CB_TYPE: &str = "tls-server-end-point";

/// What the server offered and the client chose, for the channel-binding checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The client chose `SCRAM-SHA-256-PLUS`; the server's `tls-server-end-point` data.
    Plus(Vec<u8>),
    /// The client chose `SCRAM-SHA-256` although `-PLUS` was offered: a client that says it
    /// supports binding (`y`) is being downgraded and is refused.
    PlainWhilePlusOffered,
    /// `-PLUS` was not offered (no TLS, or a certificate whose hash is undefined).
    NotOffered,
}

/// `tls-server-end-point` data of a DER certificate: its hash with the digest of its
/// signature algorithm (SHA-256 for MD5 and SHA-1); `None` where RFC 5929 defines none
/// (Ed25519, RSA-PSS) or the certificate cannot be read.
pub fn tls_server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    use const_oid::db::rfc5912 as oid;
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let alg = cert.signature_algorithm.oid;
    let algorithm = if alg == oid::ECDSA_WITH_SHA_256
        || alg == oid::SHA_256_WITH_RSA_ENCRYPTION
        || alg == oid::SHA_1_WITH_RSA_ENCRYPTION
        || alg == oid::MD_5_WITH_RSA_ENCRYPTION
    {
        &digest::SHA256
    } else if alg == oid::ECDSA_WITH_SHA_384 || alg == oid::SHA_384_WITH_RSA_ENCRYPTION {
        &digest::SHA384
    } else if alg == oid::ECDSA_WITH_SHA_512 || alg == oid::SHA_512_WITH_RSA_ENCRYPTION {
        &digest::SHA512
    } else {
        return None;
    };
    Some(digest::digest(algorithm, cert_der).as_ref().to_vec())
}

/// A parsed SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: u32,
    pub salt_b64: String,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A client key recovered from a proof; never logged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientKey(pub [u8; 32]);

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("nonce mismatch")]
    Nonce,
    #[error("wrong proof")]
    Proof,
    #[error("the server's signature does not match")]
    ServerSignature,
}

fn key32(b: &[u8]) -> Option<[u8; 32]> {
    b.try_into().ok()
}

impl std::str::FromStr for Verifier {
    type Err = ScramError;

    fn from_str(s: &str) -> Result<Self, ScramError> {
        let bad = ScramError::Malformed("verifier");
        let rest = s.strip_prefix("SCRAM-SHA-256$").ok_or(bad.clone())?;
        let (params, keys) = rest.split_once('$').ok_or(bad.clone())?;
        let (iter, salt) = params.split_once(':').ok_or(bad.clone())?;
        let (stored, server) = keys.split_once(':').ok_or(bad.clone())?;
        let iterations: u32 = iter.parse().map_err(|_| bad.clone())?;
        B64.decode(salt).map_err(|_| bad.clone())?;
        let stored_key = B64
            .decode(stored)
            .ok()
            .and_then(|k| key32(&k))
            .ok_or(bad.clone())?;
        let server_key = B64.decode(server).ok().and_then(|k| key32(&k)).ok_or(bad)?;
        Ok(Self {
            iterations,
            salt_b64: salt.to_string(),
            stored_key,
            server_key,
        })
    }
}

impl Verifier {
    /// A verifier no proof can match, with a salt stable per user name, for the exchange
    /// with an unknown user (it must look like one with a known user).
    pub fn mock(mock_key: &[u8; 32], user: &str) -> Self {
        let k = hmac::Key::new(hmac::HMAC_SHA256, mock_key);
        let salt = hmac::sign(&k, user.as_bytes());
        let mut stored_key = [0u8; 32];
        let mut server_key = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut stored_key[..]);
        rand::Rng::fill(&mut rand::thread_rng(), &mut server_key[..]);
        Self {
            iterations: 4096,
            salt_b64: B64.encode(&salt.as_ref()[..16]),
            stored_key,
            server_key,
        }
    }
}

fn hmac256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k, msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = a[i] ^ b[i];
    }
    out
}

fn nonce() -> String {
    let mut b = [0u8; 18];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    B64.encode(b)
}

/// The server side of one exchange, between the client's first and final messages.
#[derive(Debug)]
pub struct ServerExchange {
    verifier: Verifier,
    /// gs2 header plus channel-binding data: what `c=` must carry.
    cbind_input: Vec<u8>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ServerExchange {
    /// Takes the client-first-message and returns the exchange and the server-first-message.
    pub fn start(
        verifier: Verifier,
        client_first: &[u8],
        binding: Binding,
    ) -> Result<(Self, String), ScramError> {
        let msg =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: cbind-flag "," [authzid] ","
        let (flag, rest) = msg
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        let cb_data = match (flag, &binding) {
            (f, Binding::Plus(data)) if f.strip_prefix("p=") == Some(CB_TYPE) => data.clone(),
            (_, Binding::Plus(_)) => return Err(ScramError::ChannelBinding),
            ("y", Binding::PlainWhilePlusOffered) => return Err(ScramError::ChannelBinding),
            ("n" | "y", _) => Vec::new(),
            (f, _) if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("channel binding flag")),
        };
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        if !authzid.is_empty() {
            return Err(ScramError::Malformed("authzid is not supported"));
        }
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("client nonce"))?;
        let nonce = format!("{client_nonce}{}", self::nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            verifier.salt_b64, verifier.iterations
        );
        Ok((
            Self {
                verifier,
                cbind_input: [format!("{flag},,").into_bytes(), cb_data].concat(),
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
        ))
    }

    /// Checks the client-final-message; returns the client's key and the
    /// server-final-message.
    pub fn finish(self, client_final: &[u8]) -> Result<(ClientKey, String), ScramError> {
        let msg =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("proof"))?;
        let mut cbind = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                cbind = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        let cbind = cbind.ok_or(ScramError::Malformed("channel binding"))?;
        if B64.decode(cbind).ok().as_deref() != Some(self.cbind_input.as_slice()) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof = B64
            .decode(proof)
            .ok()
            .and_then(|p| key32(&p))
            .ok_or(ScramError::Malformed("proof"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac256(&self.verifier.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &signature);
        let check = sha256(&client_key);
        if !bool::from(check.ct_eq(&self.verifier.stored_key)) {
            return Err(ScramError::Proof);
        }
        let server_signature = hmac256(&self.verifier.server_key, auth_message.as_bytes());
        Ok((
            ClientKey(client_key),
            format!("v={}", B64.encode(server_signature)),
        ))
    }
}

/// The client side of one exchange with a backend, answering with a recovered key.
#[derive(Debug)]
pub struct ClientExchange {
    client_first_bare: String,
    nonce: String,
    auth_message: Option<String>,
}

impl ClientExchange {
    /// Returns the exchange and the client-first-message.
    pub fn start() -> (Self, String) {
        let nonce = nonce();
        let bare = format!("n=,r={nonce}");
        let first = format!("n,,{bare}");
        (
            Self {
                client_first_bare: bare,
                nonce,
                auth_message: None,
            },
            first,
        )
    }

    /// Takes the server-first-message and returns the client-final-message.
    pub fn respond(&mut self, key: &ClientKey, server_first: &[u8]) -> Result<String, ScramError> {
        let msg =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let r = msg
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("server nonce"))?;
        if !r.starts_with(&self.nonce) {
            return Err(ScramError::Nonce);
        }
        let without_proof = format!("c=biws,r={r}");
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);
        let stored_key = sha256(&key.0);
        let signature = hmac256(&stored_key, auth_message.as_bytes());
        let proof = xor(&key.0, &signature);
        self.auth_message = Some(auth_message);
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final-message against the verifier's server key.
    pub fn verify(&self, server_key: &[u8; 32], server_final: &[u8]) -> Result<(), ScramError> {
        let msg =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let v = msg
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramError::Malformed("server signature"))?;
        let auth = self
            .auth_message
            .as_ref()
            .ok_or(ScramError::Malformed("out of order"))?;
        let expected = hmac256(server_key, auth.as_bytes());
        if bool::from(v.as_slice().ct_eq(expected.as_slice())) {
            Ok(())
        } else {
            Err(ScramError::ServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier for `password` the way PostgreSQL computes one.
    fn verifier_for(password: &str) -> (Verifier, [u8; 32]) {
        let salt = b"0123456789abcdef";
        let mut salted = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac256(&salted, b"Client Key");
        let server_key = hmac256(&salted, b"Server Key");
        let v = format!(
            "SCRAM-SHA-256$4096:{}${}:{}",
            B64.encode(salt),
            B64.encode(sha256(&client_key)),
            B64.encode(server_key)
        );
        (v.parse().unwrap(), client_key)
    }

    #[test]
    fn a_client_key_answers_a_server_holding_the_same_verifier() {
        let (v, real_key) = verifier_for("secret");
        // The proxy's backend-side client talks to its own server side.
        let (mut client, first) = ClientExchange::start();
        let (server, server_first) =
            ServerExchange::start(v.clone(), first.as_bytes(), Binding::NotOffered).unwrap();
        let fin = client
            .respond(&ClientKey(real_key), server_first.as_bytes())
            .unwrap();
        let (recovered, server_final) = server.finish(fin.as_bytes()).unwrap();
        assert_eq!(recovered.0, real_key);
        client
            .verify(&v.server_key, server_final.as_bytes())
            .unwrap();
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let (v, _) = verifier_for("secret");
        let (_, other) = verifier_for("other");
        let (mut client, first) = ClientExchange::start();
        let (server, server_first) =
            ServerExchange::start(v, first.as_bytes(), Binding::NotOffered).unwrap();
        let fin = client
            .respond(&ClientKey(other), server_first.as_bytes())
            .unwrap();
        assert_eq!(
            server.finish(fin.as_bytes()).unwrap_err(),
            ScramError::Proof
        );
    }

    #[test]
    fn channel_binding_is_checked_and_downgrades_refused() {
        let (v, key) = verifier_for("secret");
        let cb = vec![7u8; 32];
        // A client binding to the same end point passes.
        let nonce = "abc";
        let first = format!("p=tls-server-end-point,,n=,r={nonce}");
        let (server, server_first) =
            ServerExchange::start(v.clone(), first.as_bytes(), Binding::Plus(cb.clone())).unwrap();
        let r = server_first
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .unwrap()
            .to_string();
        let mut input = b"p=tls-server-end-point,,".to_vec();
        input.extend_from_slice(&cb);
        let without_proof = format!("c={},r={r}", B64.encode(&input));
        let auth = format!("n=,r={nonce},{server_first},{without_proof}");
        let proof = xor(&key, &hmac256(&sha256(&key), auth.as_bytes()));
        let fin = format!("{without_proof},p={}", B64.encode(proof));
        server.finish(fin.as_bytes()).unwrap();
        // Other end-point data (a man in the middle's certificate) fails.
        let (server, _) =
            ServerExchange::start(v.clone(), first.as_bytes(), Binding::Plus(vec![8u8; 32]))
                .unwrap();
        assert_eq!(
            server.finish(fin.as_bytes()).unwrap_err(),
            ScramError::ChannelBinding
        );
        // "y" (client supports binding, thinks the server does not) while -PLUS was offered.
        let y = format!("y,,n=,r={nonce}");
        assert_eq!(
            ServerExchange::start(v, y.as_bytes(), Binding::PlainWhilePlusOffered).unwrap_err(),
            ScramError::ChannelBinding
        );
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let der = generated.cert.der().to_vec();
        let h = tls_server_end_point(&der).unwrap();
        assert_eq!(h, sha256(&der).to_vec());
        assert!(tls_server_end_point(b"not a certificate").is_none());
    }

    #[test]
    fn malformed_verifiers_are_refused() {
        assert!("md5abc".parse::<Verifier>().is_err());
        assert!("SCRAM-SHA-256$x:abc$a:b".parse::<Verifier>().is_err());
    }
}
