//! Session state one client leaves on a pooled server connection never reaches the next
//! client (transaction mode with one server connection shared by two clients, and session
//! mode when a client leaves): settings, the role, custom variables, advisory locks and
//! temporary tables are reset (`DISCARD ALL`) or the connection is closed before anyone else
//! runs on it; the reported parameters the proxy tracks cost no reset, and plain traffic
//! none either.

use crate::harness::{connect_tls, TestServer};

/// The first column of the first row of a simple query.
async fn one(c: &tokio_postgres::Client, sql: &str) -> String {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap()
}

/// What a fresh session of the connection shows.
#[derive(Debug, PartialEq, Eq)]
struct Defaults {
    search_path: String,
    current_user: String,
    statement_timeout: String,
    custom: String,
    advisory_locks: String,
    temp_table: String,
    listening: String,
}

async fn observe(c: &tokio_postgres::Client) -> Defaults {
    Defaults {
        search_path: one(c, "SHOW search_path").await,
        current_user: one(c, "SELECT current_user::text").await,
        statement_timeout: one(c, "SHOW statement_timeout").await,
        custom: one(
            c,
            "SELECT coalesce(current_setting('a.b', true), '<undefined>')",
        )
        .await,
        advisory_locks: one(
            c,
            "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        )
        .await,
        temp_table: one(c, "SELECT coalesce(to_regclass('pg_temp.tt')::text, '<none>')").await,
        listening: one(c, "SELECT count(*)::text FROM pg_listening_channels()").await,
    }
}

fn resets(s: &TestServer) -> u64 {
    let pooler = s.running.as_ref().unwrap().pooler.as_ref().unwrap();
    pooler.stats().iter().map(|d| d.resets).sum()
}

#[tokio::test]
async fn session_state_never_reaches_the_next_client() {
    let s = TestServer::start_with(|c| c.pooler.pool_size = 1).await;
    let conn = s.database_with_connection("hygiene").await.1;
    let url = conn["endpoints"]["pooled"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    let login_role = url::Url::parse(&url).unwrap().username().to_string();
    let a = connect_tls(&url).await.unwrap();
    let b = connect_tls(&url).await.unwrap();

    let defaults = observe(&b).await;
    assert_eq!(defaults.custom, "<undefined>");
    assert_eq!(defaults.statement_timeout, "0");
    assert_ne!(
        defaults.current_user, login_role,
        "sessions act as the owner"
    );
    let pid = one(&b, "SELECT pg_backend_pid()::text").await;
    // A statement B prepared stays prepared on the shared server session ...
    let st = b.prepare("SELECT $1::int + 1").await.unwrap();
    assert_eq!(
        b.query_one(&st, &[&1i32]).await.unwrap().get::<_, i32>(0),
        2
    );
    let prepared = "SELECT count(*)::text FROM pg_prepared_statements";
    assert_eq!(one(&b, prepared).await, "1");

    // ... through plain traffic and SETs of the tracked parameters (no reset, same session).
    a.batch_execute("CREATE TABLE t (id int)").await.unwrap();
    a.batch_execute("SET TimeZone = 'Asia/Tokyo'; SET application_name = 'a'")
        .await
        .unwrap();
    let count = a
        .prepare("SELECT count(*) FROM pg_class WHERE oid > $1")
        .await
        .unwrap();
    for i in 0..20u32 {
        a.query_one(&count, &[&i]).await.unwrap();
        a.batch_execute("UPDATE t SET id = id WHERE false; SELECT 1")
            .await
            .unwrap();
        b.query_one(&st, &[&1i32]).await.unwrap();
    }
    assert_eq!(one(&b, prepared).await, "2", "A's and B's statements");
    assert_eq!(one(&a, "SELECT pg_backend_pid()::text").await, pid);
    assert_eq!(resets(&s), 0);
    assert_eq!(observe(&b).await, defaults);

    // Session state A changes, outside a transaction and inside a committed one without
    // LOCAL, by the simple and the extended protocol: B always sees the defaults.
    let cases: &[&str] = &[
        "SET search_path = x",
        "SET ROLE NONE",
        &format!("SET ROLE \"{login_role}\""),
        "SET statement_timeout = '1ms'",
        "SELECT set_config('a.b', '1', false)",
        "BEGIN; SET search_path = y; SET statement_timeout = '2ms'; COMMIT",
        "SELECT pg_advisory_lock(42)",
        "CREATE TEMP TABLE tt (a int)",
        "LISTEN chan",
        "SET SESSION search_path = x; SELECT 1",
    ];
    let mut expected_resets = 0;
    for sql in cases {
        a.batch_execute(sql).await.unwrap();
        expected_resets += 1;
        assert_eq!(observe(&b).await, defaults, "after A ran {sql}");
        // A's next transaction runs on a reset session too: session state does not follow
        // a client in transaction mode (only the tracked parameters do).
        assert_eq!(observe(&a).await, defaults, "A after {sql}");
        assert_eq!(one(&a, "SHOW TimeZone").await, "Asia/Tokyo");
        assert_eq!(resets(&s), expected_resets, "{sql}");
        // B's prepared statement is prepared again where needed.
        assert_eq!(
            b.query_one(&st, &[&41i32]).await.unwrap().get::<_, i32>(0),
            42
        );
    }

    // The extended protocol: a statement parsed in one transaction and run in later ones
    // (tokio-postgres prepares every statement it runs).
    let set_path = a.prepare("SET search_path = z").await.unwrap();
    expected_resets = resets(&s);
    for _ in 0..2 {
        a.execute(&set_path, &[]).await.unwrap();
        expected_resets += 1;
        assert_eq!(observe(&b).await, defaults);
        assert_eq!(resets(&s), expected_resets);
    }
    a.execute("SELECT set_config('a.b', $1, false)", &[&"2"])
        .await
        .unwrap();
    assert_eq!(observe(&b).await, defaults);
    // Inside an explicit transaction of the extended protocol.
    let mut a = a;
    let tx = a.transaction().await.unwrap();
    tx.execute("SET ROLE NONE", &[]).await.unwrap();
    assert_eq!(
        tx.query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        login_role
    );
    tx.commit().await.unwrap();
    assert_eq!(observe(&b).await, defaults);

    // Transaction-scoped changes leave nothing and cost nothing.
    let before = resets(&s);
    a.batch_execute(
        "BEGIN; SET LOCAL search_path = x; SELECT set_config('a.c', '1', true); COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(observe(&b).await, defaults);
    assert_eq!(resets(&s), before);

    s.stop().await;
}

/// Session mode resets a server connection (`DISCARD ALL`) when its client leaves; a custom
/// variable, which `DISCARD ALL` would leave defined, makes the proxy close it instead.
#[tokio::test]
async fn session_mode_resets_or_closes_when_the_client_leaves() {
    let s = TestServer::start_with(|c| {
        c.pooler.pool_size = 1;
        c.pooler.mode = pgfleet::config::PoolModeConfig::Session;
    })
    .await;
    let conn = s.database_with_connection("hygiene").await.1;
    let url = conn["endpoints"]["pooled"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    let first = connect_tls(&url).await.unwrap();
    let defaults = observe(&first).await;
    let pid = one(&first, "SELECT pg_backend_pid()::text").await;
    first
        .batch_execute("SET search_path = x; SET ROLE NONE; CREATE TEMP TABLE tt (a int)")
        .await
        .unwrap();
    drop(first);
    let second = connect_tls(&url).await.unwrap();
    assert_eq!(observe(&second).await, defaults);
    assert_eq!(
        one(&second, "SELECT pg_backend_pid()::text").await,
        pid,
        "reset, kept"
    );
    second
        .batch_execute("SELECT set_config('a.b', '1', false)")
        .await
        .unwrap();
    drop(second);
    let third = connect_tls(&url).await.unwrap();
    assert_eq!(observe(&third).await, defaults);
    assert_ne!(
        one(&third, "SELECT pg_backend_pid()::text").await,
        pid,
        "closed"
    );
    s.stop().await;
}
