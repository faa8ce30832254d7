//! Each step of a client's login, the client played with postgres-protocol's frontend
//! messages and SCRAM client over an in-memory stream (a loopback socket for the startup
//! negotiation, which begins on TCP).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::catalog::{Catalog, CatalogError, Route};
use crate::{BackendHost, BackendTarget, Pooler, Settings};

const PASSWORD: &str = "correct horse";

fn route(role: &str) -> Route {
    Route {
        connection_id: "c1".to_string(),
        database_id: "d1".to_string(),
        pg_database: "appdb".to_string(),
        role: role.to_string(),
        verifier: postgres_protocol::password::scram_sha_256(PASSWORD.as_bytes()),
        target: BackendTarget {
            key: "local".to_string(),
            host: BackendHost::Tcp("127.0.0.1".to_string()),
            port: 1,
            tls: false,
        },
        unavailable: None,
    }
}

struct Routes(HashMap<String, Route>);

#[async_trait::async_trait]
impl Catalog for Routes {
    async fn route(&self, role: &str) -> Result<Option<Route>, CatalogError> {
        Ok(self.0.get(role).cloned())
    }
}

/// A proxy whose catalog knows `routes`, requiring TLS or not.
fn pooler(routes: Vec<Route>, require_tls: bool) -> Pooler {
    let routes = routes.into_iter().map(|r| (r.role.clone(), r)).collect();
    let settings = Settings {
        require_tls,
        ..Settings::default()
    };
    Pooler::new(settings, Arc::new(Routes(routes)), None, None)
}

fn params(p: &[(&str, &str)]) -> HashMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The next message the proxy sent, parsed as a client would.
async fn next_message<S: AsyncRead + Unpin>(s: &mut S, buf: &mut BytesMut) -> Message {
    loop {
        if let Some(m) = Message::parse(buf).unwrap() {
            return m;
        }
        assert!(s.read_buf(buf).await.unwrap() > 0, "the proxy hung up");
    }
}

/// The SQLSTATE of an `ErrorResponse`.
fn code_of(m: Message) -> String {
    let Message::ErrorResponse(e) = m else {
        panic!("expected an ErrorResponse");
    };
    e.fields()
        .find(|f| Ok(f.type_() == b'C'))
        .unwrap()
        .map(|f| String::from_utf8_lossy(f.value_bytes()).into_owned())
        .unwrap()
}

/// Plays a client answering the SCRAM exchange with `password`: the mechanisms it was
/// offered, and the message that ended the exchange early (an error, say), if one did.
async fn scram_client(
    c: &mut DuplexStream,
    buf: &mut BytesMut,
    password: &str,
    plus: Option<Vec<u8>>,
) -> (Vec<String>, Option<Message>) {
    let body = match next_message(c, buf).await {
        Message::AuthenticationSasl(body) => body,
        other => return (Vec::new(), Some(other)),
    };
    let offered: Vec<String> = body
        .mechanisms()
        .map(|m| Ok(m.to_string()))
        .collect()
        .unwrap();
    let (mechanism, binding) = match plus {
        Some(cb) => (MECHANISM_PLUS, ChannelBinding::tls_server_end_point(cb)),
        None => (MECHANISM, ChannelBinding::unsupported()),
    };
    let mut scram = ScramSha256::new(password.as_bytes(), binding);
    let mut out = BytesMut::new();
    frontend::sasl_initial_response(mechanism, scram.message(), &mut out).unwrap();
    c.write_all(&out).await.unwrap();
    let server_first = match next_message(c, buf).await {
        Message::AuthenticationSaslContinue(b) => b.data().to_vec(),
        other => return (offered, Some(other)),
    };
    scram.update(&server_first).unwrap();
    let mut out = BytesMut::new();
    frontend::sasl_response(scram.message(), &mut out).unwrap();
    c.write_all(&out).await.unwrap();
    (offered, None)
}

/// Runs [`authenticate`] for `user` against the verifier of [`PASSWORD`] with a client
/// answering `password`: what the client was offered, and how the exchange ended.
async fn exchange(
    password: &str,
    plus: Option<Vec<u8>>,
    client_plus: bool,
) -> (Vec<String>, Exchange) {
    let (mut proxy_end, mut client_end) = tokio::io::duplex(4096);
    let verifier: Verifier = route("alice").verifier.parse().unwrap();
    let cb = plus.clone().filter(|_| client_plus);
    let server = tokio::spawn(async move {
        authenticate(&mut proxy_end, &verifier, plus, "alice")
            .await
            .unwrap()
    });
    let (offered, early) = scram_client(&mut client_end, &mut BytesMut::new(), password, cb).await;
    assert!(early.is_none(), "the exchange stopped early");
    (offered, server.await.unwrap())
}

#[test]
fn protocol_3_0_needs_no_reply_and_other_majors_are_refused() {
    let p = params(&[("user", "alice")]);
    assert!(protocol_reply(proto::PROTOCOL_3_0, &p).unwrap().is_none());
    let r = protocol_reply(4 << 16, &p).unwrap_err();
    assert_eq!(r.code, "0A000");
    assert!(r.message.contains("4.0"), "{}", r.message);
}

#[test]
fn a_newer_minor_is_told_3_0_and_the_unknown_protocol_options() {
    let p = params(&[("user", "alice"), ("_pq_.b", "1"), ("_pq_.a", "2")]);
    let mut out = protocol_reply((3 << 16) | 2, &p).unwrap().unwrap();
    assert_eq!(out.get_u8(), b'v');
    let len = out.get_i32();
    assert_eq!(usize::try_from(len).unwrap(), out.len() + 4);
    assert_eq!(out.get_i32(), 0, "newest minor version");
    assert_eq!(out.get_i32(), 2, "options not known");
    assert_eq!(&out[..], b"_pq_.a\0_pq_.b\0");
}

#[test]
fn refusals_that_need_no_password() {
    let ok = params(&[("user", "alice"), ("replication", "off")]);
    assert_eq!(check_startup(&ok, true, true), Ok("alice"));
    assert_eq!(check_startup(&ok, false, false), Ok("alice"));
    let code =
        |p: &[(&str, &str)], tls: bool| check_startup(&params(p), tls, true).unwrap_err().code;
    assert_eq!(code(&[("user", "alice")], false), "28000");
    assert_eq!(
        code(&[("user", "alice"), ("replication", "database")], true),
        "08P01"
    );
    assert_eq!(
        code(&[("user", "alice"), ("options", "-c x=1")], true),
        "08P01"
    );
    assert_eq!(code(&[("user", "")], true), "28000");
    assert_eq!(code(&[], true), "28000");
    // Blank options are no options.
    assert!(check_startup(&params(&[("user", "a"), ("options", " ")]), true, true).is_ok());
}

#[tokio::test]
async fn the_right_password_is_proved_and_the_client_verifies_the_server() {
    let (offered, ended) = exchange(PASSWORD, None, false).await;
    assert_eq!(offered, [MECHANISM]);
    let Exchange::Proved(_, server_final) = ended else {
        panic!("expected a proof, got {ended:?}");
    };
    assert!(server_final.starts_with("v="), "{server_final}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_postgresql_does() {
    let (_, ended) = exchange("wrong", None, false).await;
    let Exchange::Refused(r) = ended else {
        panic!("expected a refusal, got {ended:?}");
    };
    assert_eq!(r, Refusal::bad_password("alice"));
}

#[tokio::test]
async fn plus_is_offered_first_over_tls_and_binds_to_the_certificate() {
    let cb = vec![9u8; 32];
    let (offered, ended) = exchange(PASSWORD, Some(cb.clone()), true).await;
    assert_eq!(offered, [MECHANISM_PLUS, MECHANISM]);
    assert!(matches!(ended, Exchange::Proved(..)), "{ended:?}");
    // A client that does not bind while -PLUS was offered is still let in ("n" flag).
    let (_, ended) = exchange(PASSWORD, Some(cb), false).await;
    assert!(matches!(ended, Exchange::Proved(..)), "{ended:?}");
}

#[tokio::test]
async fn a_client_hanging_up_at_the_password_prompt_just_leaves() {
    let (mut proxy_end, client_end) = tokio::io::duplex(4096);
    let verifier: Verifier = route("alice").verifier.parse().unwrap();
    drop(client_end);
    let ended = authenticate(&mut proxy_end, &verifier, None, "alice").await;
    // Its write may fail first (the pipe is closed): either way, no session.
    assert!(matches!(ended, Ok(Exchange::Left) | Err(_)), "{ended:?}");
}

#[tokio::test]
async fn something_else_than_a_sasl_response_is_refused() {
    let (mut proxy_end, mut client_end) = tokio::io::duplex(4096);
    let verifier: Verifier = route("alice").verifier.parse().unwrap();
    let server = tokio::spawn(async move {
        authenticate(&mut proxy_end, &verifier, None, "alice")
            .await
            .unwrap()
    });
    let mut buf = BytesMut::new();
    next_message(&mut client_end, &mut buf).await;
    let mut out = BytesMut::new();
    frontend::query("SELECT 1", &mut out).unwrap();
    client_end.write_all(&out).await.unwrap();
    let Exchange::Refused(r) = server.await.unwrap() else {
        panic!("expected a refusal");
    };
    assert_eq!(r.code, "28000");
}

#[test]
fn admission_checks_the_route_then_the_database() {
    let user = "alice";
    let p = params(&[("user", user), ("database", "appdb")]);
    assert_eq!(admit(Some(route(user)), &p, user).unwrap().role, user);
    assert_eq!(
        admit(None, &p, user).unwrap_err(),
        Refusal::bad_password(user)
    );
    let mut down = route(user);
    down.unavailable = Some("recovering".to_string());
    let r = admit(Some(down), &p, user).unwrap_err();
    assert_eq!(r.code, "57P03");
    assert!(r.message.contains("recovering"));
    let other = params(&[("user", user), ("database", "other")]);
    assert_eq!(
        admit(Some(route(user)), &other, user).unwrap_err().code,
        "3D000"
    );
    // Without a database the user name is the one asked for.
    let mut same = route(user);
    same.pg_database = user.to_string();
    assert!(admit(Some(same), &params(&[("user", user)]), user).is_ok());
}

/// Runs [`login`] on a proxy knowing `alice` with a client answering `password`: whether
/// the client got in, else the code of the error it was sent.
async fn full_login(
    p: HashMap<String, String>,
    password: &str,
    tls: bool,
    unavailable: Option<&str>,
) -> Result<(), String> {
    let mut r = route("alice");
    r.unavailable = unavailable.map(str::to_string);
    let pooler = pooler(vec![r], true);
    let (mut proxy_end, mut client_end) = tokio::io::duplex(4096);
    let shared = pooler.shared.clone();
    let server = tokio::spawn(async move {
        let done = login(&shared, &mut proxy_end, tls, &p, None).await.unwrap();
        done.is_some()
    });
    let mut buf = BytesMut::new();
    let (_, early) = scram_client(&mut client_end, &mut buf, password, None).await;
    if server.await.unwrap() {
        assert!(early.is_none());
        return Ok(());
    }
    // What the proxy wrote before it hung up can still be read.
    let refusal = match early {
        Some(m) => m,
        None => next_message(&mut client_end, &mut buf).await,
    };
    Err(code_of(refusal))
}

#[tokio::test]
async fn a_whole_login_lets_the_right_password_in_and_no_one_else() {
    let p = params(&[("user", "alice"), ("database", "appdb")]);
    assert_eq!(full_login(p.clone(), PASSWORD, true, None).await, Ok(()));
    assert_eq!(
        full_login(p.clone(), "wrong", true, None).await,
        Err("28P01".to_string())
    );
    // Without TLS the client is refused before any password is asked.
    assert_eq!(
        full_login(p.clone(), PASSWORD, false, None).await,
        Err("28000".to_string())
    );
    // The right password for a database that is not available now: refused after it.
    assert_eq!(
        full_login(p.clone(), PASSWORD, true, Some("recovering")).await,
        Err("57P03".to_string())
    );
    let elsewhere = params(&[("user", "alice"), ("database", "other")]);
    assert_eq!(
        full_login(elsewhere, PASSWORD, true, None).await,
        Err("3D000".to_string())
    );
}

#[tokio::test]
async fn an_unknown_user_goes_through_the_same_exchange_then_is_refused() {
    let p = params(&[("user", "mallory"), ("database", "appdb")]);
    // Refused like a wrong password, after the whole exchange (existence does not leak).
    assert_eq!(
        full_login(p, PASSWORD, true, None).await,
        Err("28P01".to_string())
    );
}

#[test]
fn the_tracked_parameters_follow_the_client_else_the_server() {
    let server = vec![
        ("TimeZone".to_string(), "UTC".to_string()),
        ("DateStyle".to_string(), "ISO, MDY".to_string()),
        ("server_version".to_string(), "15.0".to_string()),
    ];
    let mine = params(&[("user", "alice"), ("timezone", "Asia/Tokyo")]);
    let wanted = tracked_values(&mine, &server);
    assert!(wanted.contains(&("TimeZone".to_string(), "Asia/Tokyo".to_string())));
    assert!(wanted.contains(&("DateStyle".to_string(), "ISO, MDY".to_string())));
    assert!(!wanted.iter().any(|(k, _)| k == "server_version"));
}

#[test]
fn the_welcome_ends_sasl_then_reports_each_parameter() {
    let server = vec![
        ("TimeZone".to_string(), "UTC".to_string()),
        ("server_version".to_string(), "15.0".to_string()),
    ];
    let wanted = vec![("TimeZone".to_string(), "Asia/Tokyo".to_string())];
    let mut out = welcome("v=abc", &server, &wanted);
    let Some(Message::AuthenticationSaslFinal(f)) = Message::parse(&mut out).unwrap() else {
        panic!("expected AuthenticationSASLFinal");
    };
    assert_eq!(f.data(), b"v=abc");
    assert!(matches!(
        Message::parse(&mut out).unwrap(),
        Some(Message::AuthenticationOk)
    ));
    let mut reported = Vec::new();
    while let Some(m) = Message::parse(&mut out).unwrap() {
        let Message::ParameterStatus(s) = m else {
            panic!("expected ParameterStatus");
        };
        reported.push((
            s.name().unwrap().to_string(),
            s.value().unwrap().to_string(),
        ));
    }
    assert_eq!(
        reported,
        [
            ("TimeZone".to_string(), "Asia/Tokyo".to_string()),
            ("server_version".to_string(), "15.0".to_string())
        ]
    );
}

/// A self-signed certificate for `localhost`: the proxy's TLS configuration, and the
/// certificate (DER).
fn certificate() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = generated.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone().into()], key)
    .unwrap();
    (Arc::new(config), der)
}

/// A pooler with no routes and a fresh self-signed certificate, and that certificate.
fn tls_pooler() -> (Pooler, Vec<u8>) {
    let (tls, der) = certificate();
    let pooler = Pooler::new(
        Settings::default(),
        Arc::new(Routes(HashMap::new())),
        Some(tls),
        Some(&der),
    );
    (pooler, der)
}

/// A TLS client trusting `der`, asking for the `postgresql` ALPN protocol or not.
fn tls_client(der: &[u8], alpn: bool) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.to_vec().into()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    }
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The proxy's side of [`startup`] on a loopback connection, and the client's socket.
async fn startup_on_loopback(
    pooler: &Pooler,
) -> (
    tokio::task::JoinHandle<Option<(bool, HashMap<String, String>, Option<Vec<u8>>)>>,
    tokio::net::TcpStream,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = pooler.shared.clone();
    let proxy = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (stream, params, end_point) = startup(&shared, tcp).await?;
        Some((stream.is_tls(), params, end_point))
    });
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    (proxy, client)
}

fn startup_packet(p: &[(&str, &str)]) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::startup_message(p.iter().copied(), &mut b).unwrap();
    b
}

#[tokio::test]
async fn an_ssl_request_is_answered_s_then_the_startup_comes_over_tls() {
    let (pooler, der) = tls_pooler();
    let (proxy, mut client) = startup_on_loopback(&pooler).await;
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    client.write_all(&out).await.unwrap();
    assert_eq!(client.read_u8().await.unwrap(), b'S');
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = tls_client(&der, false).connect(name, client).await.unwrap();
    client
        .write_all(&startup_packet(&[("user", "alice")]))
        .await
        .unwrap();
    let (is_tls, params, end_point) = proxy.await.unwrap().unwrap();
    assert!(is_tls);
    assert_eq!(params.get("user").map(String::as_str), Some("alice"));
    // SCRAM-SHA-256-PLUS binds to the certificate this handshake used.
    assert_eq!(end_point, crate::scram::tls_server_end_point(&der));
}

#[tokio::test]
async fn without_a_certificate_an_ssl_request_is_answered_n() {
    let pooler = pooler(Vec::new(), false);
    let (proxy, mut client) = startup_on_loopback(&pooler).await;
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    client.write_all(&out).await.unwrap();
    assert_eq!(client.read_u8().await.unwrap(), b'N');
    client
        .write_all(&startup_packet(&[("user", "alice")]))
        .await
        .unwrap();
    let (is_tls, params, end_point) = proxy.await.unwrap().unwrap();
    assert!(!is_tls && end_point.is_none());
    assert_eq!(params.len(), 1);
}

#[tokio::test]
async fn a_gssenc_request_is_answered_n_and_the_startup_follows() {
    let pooler = pooler(Vec::new(), false);
    let (proxy, mut client) = startup_on_loopback(&pooler).await;
    client
        .write_all(&proto::startup_packet(proto::GSSENC_REQUEST, &[]))
        .await
        .unwrap();
    assert_eq!(client.read_u8().await.unwrap(), b'N');
    client
        .write_all(&startup_packet(&[("user", "bob")]))
        .await
        .unwrap();
    let (_, params, _) = proxy.await.unwrap().unwrap();
    assert_eq!(params.get("user").map(String::as_str), Some("bob"));
}

#[tokio::test]
async fn a_cancel_request_ends_the_connection() {
    let pooler = pooler(Vec::new(), false);
    let (proxy, mut client) = startup_on_loopback(&pooler).await;
    let mut out = BytesMut::new();
    frontend::cancel_request(1, 2, &mut out);
    client.write_all(&out).await.unwrap();
    assert!(proxy.await.unwrap().is_none());
}

#[tokio::test]
async fn an_unsupported_protocol_is_refused_at_startup() {
    let pooler = pooler(Vec::new(), false);
    let (proxy, mut client) = startup_on_loopback(&pooler).await;
    let mut body = Vec::new();
    proto::put_cstr(&mut body, "user");
    proto::put_cstr(&mut body, "alice");
    body.push(0);
    client
        .write_all(&proto::startup_packet(2 << 16, &body))
        .await
        .unwrap();
    assert!(proxy.await.unwrap().is_none());
    let mut buf = BytesMut::new();
    assert_eq!(code_of(next_message(&mut client, &mut buf).await), "0A000");
}

#[tokio::test]
async fn direct_tls_needs_the_postgresql_alpn_protocol() {
    let (pooler, der) = tls_pooler();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // With it: TLS from the first byte, then the startup packet.
    let (proxy, client) = startup_on_loopback(&pooler).await;
    let mut client = tls_client(&der, true)
        .connect(name.clone(), client)
        .await
        .unwrap();
    client
        .write_all(&startup_packet(&[("user", "alice")]))
        .await
        .unwrap();
    let (is_tls, _, end_point) = proxy.await.unwrap().unwrap();
    assert!(is_tls && end_point.is_some());
    // Without it: refused.
    let (proxy, client) = startup_on_loopback(&pooler).await;
    let mut client = tls_client(&der, false).connect(name, client).await.unwrap();
    assert!(proxy.await.unwrap().is_none());
    let mut buf = BytesMut::new();
    assert_eq!(code_of(next_message(&mut client, &mut buf).await), "08P01");
}
