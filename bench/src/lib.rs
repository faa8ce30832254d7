//! Shared pieces of the benchmarks: statistics, a TLS client for tenant databases, and a
//! pgfleet server started in-process on a fresh data directory.

use std::time::Duration;

use anyhow::Context as _;

/// Percentile (0..=100) of durations, nearest-rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `sslmode=require`: encrypted, certificate not verified (the embedded cluster's is
/// self-signed).
#[derive(Debug)]
struct AcceptAny(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(std::sync::Arc::new(AcceptAny(provider)))
                .with_no_client_auth()
        });
    match config {
        Ok(c) => tokio_postgres_rustls::MakeRustlsConnect::new(c),
        Err(e) => {
            eprintln!("TLS set-up failed: {e}");
            std::process::exit(1)
        }
    }
}

/// Connects with a `postgresql://…?sslmode=require` string over TLS and runs `SELECT 1`.
pub async fn select_one(
    conn_string: &str,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(conn_string, tls.clone())
        .await
        .context("connect")?;
    let task = tokio::spawn(conn);
    client.simple_query("SELECT 1").await.context("select 1")?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// Prints a line of the report.
pub fn row(what: &str, value: String) {
    println!("{what:<58} {value}");
}
