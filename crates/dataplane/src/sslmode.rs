//! Client-side TLS to PostgreSQL servers, read the way libpq reads it: `sslmode`
//! (`disable` … `verify-full`) and `sslrootcert` (a PEM file of trusted CA certificates).
//! Owns the rustls client configuration of each mode, the libpq environment that gives
//! `pg_dump`/`pg_restore`/`psql` the same settings, and the user-facing description of a
//! certificate that does not verify (it names the host and says why).

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, not verified (pgfleet tries TLS first, like `prefer`).
    Allow,
    /// TLS if the server offers it, not verified (libpq's default).
    #[default]
    Prefer,
    /// TLS; verified like `verify-ca` when a CA file is given (libpq does the same).
    Require,
    /// TLS, the certificate chains to the CA file.
    VerifyCa,
    /// TLS, the certificate chains to the CA file and names the host.
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Whether a server without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Nothing,
    /// Chains to the CA file; any host name.
    Chain,
    /// Chains to the CA file and is valid for the host name connected to.
    ChainAndName,
}

/// How pgfleet talks TLS to one PostgreSQL server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    pub mode: SslMode,
    /// `sslrootcert`: the CA certificates a verified server must chain to.
    pub root_cert: Option<PathBuf>,
}

/// A TLS setting that cannot be used (bad mode, missing or unreadable CA file).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsSettingError(String);

impl ClientTls {
    /// No TLS (the embedded cluster's Unix socket).
    pub fn disabled() -> Self {
        Self {
            mode: SslMode::Disable,
            root_cert: None,
        }
    }

    /// From the `sslmode` and `sslrootcert` query parameters of a postgres:// URL. A
    /// verifying mode needs a CA file: pgfleet does not guess one (libpq's
    /// `~/.postgresql/root.crt` would differ per OS user), and the file must be readable now.
    pub fn from_query(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
    ) -> Result<Self, TlsSettingError> {
        let mode = match sslmode {
            None => SslMode::default(),
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                TlsSettingError(format!(
                    "sslmode {m:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            })?,
        };
        let root_cert = sslrootcert.filter(|p| !p.is_empty()).map(PathBuf::from);
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(TlsSettingError(format!(
                "sslmode={} needs sslrootcert=<file of the CA certificates to trust>",
                mode.as_str()
            )));
        }
        let tls = Self { mode, root_cert };
        if tls.verification() != Verification::Nothing {
            tls.root_store()?;
        }
        Ok(tls)
    }

    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Verification::ChainAndName,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verification::Chain,
            _ => Verification::Nothing,
        }
    }

    fn root_store(&self) -> Result<rustls::RootCertStore, TlsSettingError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;
        let Some(path) = &self.root_cert else {
            return Err(TlsSettingError("no sslrootcert given".to_string()));
        };
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| TlsSettingError(format!("sslrootcert {shown}: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| TlsSettingError(format!("sslrootcert {shown}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TlsSettingError(format!("sslrootcert {shown}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsSettingError(format!(
                "sslrootcert {shown}: no PEM certificate in the file"
            )));
        }
        Ok(roots)
    }

    /// The rustls client configuration of this mode (the CA file is read again, so a
    /// replaced file is used by the next connection).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsSettingError> {
        let verification = self.verification();
        if verification == Verification::Nothing {
            return crate::tls::require_client_config()
                .map_err(|e| TlsSettingError(format!("TLS: {e}")));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(self.root_store()?),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsSettingError(format!("TLS: {e}")))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSettingError(format!("TLS: {e}")))?
            .dangerous();
        Ok(match verification {
            Verification::ChainAndName => builder.with_custom_certificate_verifier(verifier),
            _ => builder.with_custom_certificate_verifier(Arc::new(AnyName(verifier))),
        }
        .with_no_client_auth())
    }

    /// A tokio-postgres connector of this mode.
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsSettingError> {
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
            self.client_config()?,
        ))
    }

    /// The libpq environment (`PGSSLMODE`, `PGSSLROOTCERT`) giving a child process
    /// (`pg_dump`, `pg_restore`, `psql`) the same settings.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("PGSSLMODE", self.mode.as_str().to_string())];
        if let Some(p) = &self.root_cert {
            env.push(("PGSSLROOTCERT", p.display().to_string()));
        }
        env
    }

    /// What went wrong, for a user, when `err` (or one of its causes) is a TLS failure:
    /// names `host:port` and says why the certificate did not verify.
    pub fn describe_failure(
        &self,
        err: &(dyn StdError + 'static),
        host: &str,
        port: u16,
    ) -> Option<String> {
        let e = find_rustls_error(err)?;
        Some(describe(e, host, port, self.root_cert.as_deref()))
    }
}

/// The rustls error among `err` and its causes (also inside an `io::Error`, whose `source`
/// skips the error it wraps).
pub fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

fn describe(e: &rustls::Error, host: &str, port: u16, root_cert: Option<&Path>) -> String {
    use rustls::CertificateError as C;
    let who = format!("certificate of {host}:{port}");
    let ca = match root_cert {
        Some(p) => format!("the CA in {}", p.display()),
        None => "a trusted CA".to_string(),
    };
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => format!("{who} is not signed by {ca}"),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("{who} does not match host name {host}")
            }
            C::Expired | C::ExpiredContext { .. } => format!("{who} has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => format!("{who} is not valid yet"),
            C::Revoked => format!("{who} is revoked"),
            other => format!("{who} does not verify against {ca}: {other}"),
        },
        other => format!("TLS with {host}:{port} failed: {other}"),
    }
}

/// `verify-ca`: the chain is verified, the host name is not (the name check comes last in
/// rustls' verifier, so a name error means everything else passed).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_libpq() {
        let t = ClientTls::from_query(None, None).unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        assert_eq!(t.verification(), Verification::Nothing);
        let t = ClientTls::from_query(Some("require"), None).unwrap();
        assert!(t.mode.requires_tls());
        assert_eq!(t.verification(), Verification::Nothing);
        assert!(ClientTls::from_query(Some("verify-full"), None)
            .unwrap_err()
            .to_string()
            .contains("sslrootcert"));
        assert!(
            ClientTls::from_query(Some("verify-ca"), Some("/nonexistent/ca.pem"))
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/ca.pem")
        );
        assert!(ClientTls::from_query(Some("bogus"), None).is_err());

        let ca = std::env::temp_dir().join(format!("pgfleet-sslmode-{}.pem", std::process::id()));
        std::fs::write(&ca, crate::tls::self_signed(&[]).unwrap().cert_pem).unwrap();
        let ca_str = ca.display().to_string();
        let t = ClientTls::from_query(Some("require"), Some(&ca_str)).unwrap();
        assert_eq!(t.verification(), Verification::Chain);
        assert!(t.client_config().is_ok());
        let t = ClientTls::from_query(Some("verify-full"), Some(&ca_str)).unwrap();
        assert_eq!(t.verification(), Verification::ChainAndName);
        assert_eq!(
            t.libpq_env(),
            vec![
                ("PGSSLMODE", "verify-full".to_string()),
                ("PGSSLROOTCERT", ca_str.clone())
            ]
        );
        let _ = std::fs::remove_file(&ca);
    }

    #[test]
    fn failures_name_the_host_and_the_reason() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let t = ClientTls {
            mode: SslMode::VerifyFull,
            root_cert: Some("/etc/ca.pem".into()),
        };
        assert_eq!(
            t.describe_failure(&io, "db.internal", 5432).unwrap(),
            "certificate of db.internal:5432 is not signed by the CA in /etc/ca.pem"
        );
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert_eq!(
            t.describe_failure(&name, "db.internal", 5432).unwrap(),
            "certificate of db.internal:5432 does not match host name db.internal"
        );
        let other = std::io::Error::other("connection reset");
        assert!(t.describe_failure(&other, "db.internal", 5432).is_none());
    }
}
