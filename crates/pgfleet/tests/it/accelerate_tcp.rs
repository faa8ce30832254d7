//! The `prisma+postgres://` endpoint for a database on a region server reached over TCP
//! (issue 18): pgfleet keeps no password for the connection's role there, so the password is
//! sealed under the API key at create and rotate, and a request presenting the key opens it
//! and logs in with SCRAM over TLS. Shown: queries and an interactive transaction run as the
//! role over TLS; the stored row holds neither the password nor the key, and opens with the
//! key only; rotation cuts the old key off and the new one works; a key issued before
//! passwords were sealed gets a clear error.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::accelerate::{
    accel_string, assert_unauthorized, raw_execute, raw_query, split, Endpoint,
};
use crate::harness::{cluster, TestServer};

/// A pgfleet whose only region is the shared test cluster reached over TCP with TLS and a
/// password (as `pooler::scram_passthrough_to_a_tls_server` does).
pub(crate) async fn tcp_region_server() -> TestServer {
    let admin = cluster().admin("postgres").await;
    let password = "tcp-admin-password";
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgfleet_tcp_admin') THEN
                 CREATE ROLE pgfleet_tcp_admin SUPERUSER LOGIN PASSWORD '{password}';
               END IF;
             END $$"
        ))
        .await
        .unwrap();
    let port = cluster().port;
    TestServer::start_with(|c| {
        c.regions.insert(
            "us-east-1".to_string(),
            pgfleet::config::RegionConfig {
                name: None,
                servers: vec![pgfleet::config::Secret::new(format!(
                    "postgres://pgfleet_tcp_admin:{password}@127.0.0.1:{port}/postgres?sslmode=require"
                ))],
            },
        );
    })
    .await
}

/// The role and password of a connection's direct string.
fn credentials(conn: &Value) -> (String, String) {
    let direct = url::Url::parse(
        conn["endpoints"]["direct"]["connectionString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    (
        direct.username().to_string(),
        direct.password().unwrap().to_string(),
    )
}

/// The stored key row of a connection: (key hash, salt, sealed password).
async fn stored(
    s: &TestServer,
    connection_id: &str,
) -> (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>) {
    sqlx::query_as(
        "SELECT key_hash, seal_salt, sealed_password FROM accelerate_keys WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_one(s.services().store().pool())
    .await
    .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_tcp_region_server_is_served_as_the_role_with_the_password_sealed_under_the_key() {
    let s = tcp_region_server().await;
    let (_db, conn) = s.database_with_connection("accel-tcp").await;
    let id = conn["id"].as_str().unwrap().to_string();
    let (role, password) = credentials(&conn);
    let (_, key) = split(&accel_string(&conn));
    let e = Endpoint::of(&s);

    // Queries run as the role, over TCP with TLS.
    let (status, body) = e
        .query(
            &key,
            &raw_query(
                "SELECT session_user::text AS who, inet_client_addr() IS NOT NULL AS tcp, \
                 current_setting('TimeZone') AS tz",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["rows"][0],
        json!([role, true, "UTC"]),
        "{body}"
    );
    // (pg_stat_ssl hides the session from the role acting as the database's owner.)
    let admin = cluster().admin("postgres").await;
    let tls: Vec<bool> = admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = $1",
            &[&role],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!tls.is_empty() && tls.iter().all(|t| *t), "{tls:?}");
    let (status, body) = e
        .query(&key, &raw_execute("CREATE TABLE t (id int PRIMARY KEY)"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An interactive transaction too.
    let (status, body) = e
        .post(
            &key,
            "/transaction/start",
            &json!({"maxWait": 2000, "timeout": 10000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tx = body["id"].as_str().unwrap().to_string();
    let (status, body) = e
        .post(
            &key,
            &format!("/transaction/{tx}/query"),
            &raw_execute("INSERT INTO t VALUES (1), (2)"),
        )
        .await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    let (status, body) = e
        .post(&key, &format!("/transaction/{tx}/commit"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = e
        .query(&key, &raw_query("SELECT count(*)::int AS n FROM t"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["rows"], json!([[2]]), "{body}");

    // The metadata store holds the key's hash and a sealed blob: neither the password nor
    // the key; the blob opens with the key (bound to this connection) and nothing else.
    let (hash, salt, blob) = stored(&s, &id).await;
    let (salt, blob) = (salt.unwrap(), blob.unwrap());
    assert_eq!(hash, pgfleet_auth::hash_token(&key));
    for field in [&hash, &salt, &blob] {
        assert!(!contains(field, password.as_bytes()));
        assert!(!contains(field, key.as_bytes()));
    }
    let sealed = pgfleet_auth::sealed::Sealed { salt, blob };
    assert_eq!(
        pgfleet_auth::sealed::unseal(&key, id.as_bytes(), &sealed).unwrap(),
        password.as_bytes()
    );
    let other_key = format!("{key}x");
    assert!(pgfleet_auth::sealed::unseal(&other_key, id.as_bytes(), &sealed).is_err());
    assert!(pgfleet_auth::sealed::unseal(&key, b"conn_other", &sealed).is_err());

    // Rotation: the old key is refused at once; the new key opens the new password.
    let r = s
        .req(
            reqwest::Method::POST,
            &format!("/v1/connections/{id}/rotate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let (_, new_key) = split(&accel_string(&rotated["data"]));
    let (_, new_password) = credentials(&rotated["data"]);
    assert_ne!(new_password, password);
    assert_unauthorized(e.query(&key, &raw_query("SELECT 1")).await);
    let (status, body) = e
        .query(&new_key, &raw_query("SELECT count(*)::int AS n FROM t"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["rows"], json!([[2]]), "{body}");
    let (_, salt, blob) = stored(&s, &id).await;
    let sealed = pgfleet_auth::sealed::Sealed {
        salt: salt.unwrap(),
        blob: blob.unwrap(),
    };
    assert!(pgfleet_auth::sealed::unseal(&key, id.as_bytes(), &sealed).is_err());
    assert_eq!(
        pgfleet_auth::sealed::unseal(&new_key, id.as_bytes(), &sealed).unwrap(),
        new_password.as_bytes()
    );

    // A key issued before passwords were sealed (no blob) gets a clear error over TCP,
    // once its cached route has expired.
    sqlx::query(
        "UPDATE accelerate_keys SET seal_salt = NULL, sealed_password = NULL WHERE connection_id = $1",
    )
    .bind(&id)
    .execute(s.services().store().pool())
    .await
    .unwrap();
    crate::harness::eventually("the unsealed key is refused with a hint", || {
        let (e, new_key, admin, role) = (&e, &new_key, &admin, &role);
        async move {
            // Its idle server connections closed, so that a new one must log in.
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    &[role],
                )
                .await
                .unwrap();
            let (_, body) = e.query(new_key, &raw_query("SELECT 1")).await;
            body.to_string().contains("rotate the connection")
        }
    })
    .await;
    s.stop().await;
}
