//! What a tenant cannot undo, seen from its own SQL session (the connection string the API
//! returns): the database's limits and owner are pgfleet's, role settings and passwords it
//! changes are put back by the tenant guard, `temp_file_limit` and the timeouts apply,
//! Prisma-Migrate-style DDL still works, and no password verifier reaches
//! pg_stat_statements or the server log. The storage quota is in `storage_quota`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::harness::{cluster, connect_tls, TestServer};

/// A server whose tenant guard only runs when the test calls it.
pub(crate) async fn start(tweak: impl FnOnce(&mut pgfleet::config::Config)) -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.tenant.check_every_secs = 86_400;
        tweak(cfg);
    })
    .await
}

pub(crate) struct Tenant {
    pub(crate) project_id: String,
    pub(crate) db_id: String,
    pub(crate) conn_id: String,
    pub(crate) conn_string: String,
    pub(crate) pg_database: String,
    pub(crate) role: String,
}

/// A project with its ready default database and connection.
pub(crate) async fn tenant(s: &TestServer, name: &str) -> Tenant {
    let r = s.post("/v1/projects", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let db = &r.body["data"]["database"];
    // Ready within the create's own wait (`provision_wait`, 5 s) on a quiet machine; under
    // CI load it may answer `provisioning` and become ready later.
    if db["status"] != "ready" {
        crate::harness::wait_ready(s, db["id"].as_str().unwrap()).await;
    }
    let conn_string = db["connectionString"].as_str().unwrap().to_string();
    let cfg: tokio_postgres::Config = conn_string.parse().unwrap();
    Tenant {
        project_id: r.body["data"]["id"].as_str().unwrap().to_string(),
        db_id: db["id"].as_str().unwrap().to_string(),
        conn_id: db["connections"][0]["id"].as_str().unwrap().to_string(),
        pg_database: cfg.get_dbname().unwrap().to_string(),
        role: cfg.get_user().unwrap().to_string(),
        conn_string,
    }
}

/// The error of a statement that must fail.
pub(crate) async fn refused(
    c: &tokio_postgres::Client,
    sql: &str,
) -> tokio_postgres::error::DbError {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql}: accepted"),
        Err(e) => e
            .as_db_error()
            .cloned()
            .unwrap_or_else(|| panic!("{sql}: {e}")),
    }
}

/// Runs one guard pass and returns the kinds it repaired for `db_id`.
async fn guard(s: &TestServer, db_id: &str) -> Vec<String> {
    let report = s.services().guard().pass().await.unwrap();
    assert!(report.ran, "the guard pass did not get its lock");
    report
        .repaired
        .iter()
        .filter_map(|r| r.strip_prefix(&format!("{db_id}: ")).map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_tenant_cannot_lift_its_database_limits_and_its_role_settings_are_put_back() {
    let s = start(|_| {}).await;
    let t = tenant(&s, "limits").await;
    let c = connect_tls(&t.conn_string).await.unwrap();
    let db = &t.pg_database;

    // The database is pgfleet's: its limits and settings are out of reach.
    for sql in [
        format!("ALTER DATABASE \"{db}\" CONNECTION LIMIT -1"),
        format!("ALTER DATABASE \"{db}\" SET temp_file_limit = -1"),
        format!("ALTER DATABASE \"{db}\" RESET ALL"),
        format!("ALTER DATABASE \"{db}\" OWNER TO CURRENT_USER"),
        format!("DROP DATABASE \"{db}\""),
    ] {
        let e = refused(&c, &sql).await;
        assert_eq!(e.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{sql}: {e}");
    }
    let e = refused(&c, "SET temp_file_limit = -1").await;
    assert_eq!(e.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{e}");
    let e = refused(&c, "ALTER ROLE CURRENT_USER CONNECTION LIMIT -1").await;
    assert_eq!(e.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{e}");
    let limit: i32 = c
        .query_one(
            "SELECT datconnlimit FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(limit, s.services().config().database_connection_limit);
    assert!(guard(&s, &t.db_id).await.is_empty(), "nothing drifted yet");

    // What PostgreSQL lets every role do to itself: session defaults that outrank the
    // database's, on the owner role (sessions run as it) and on the login role.
    c.batch_execute(
        "ALTER ROLE CURRENT_USER SET idle_in_transaction_session_timeout = 0; \
         SET ROLE NONE; \
         ALTER ROLE CURRENT_USER SET statement_timeout = 0; \
         ALTER ROLE CURRENT_USER RESET role;",
    )
    .await
    .unwrap();
    // An operator (or an old pgfleet) leaves the database in the tenant's hands.
    let admin = cluster().admin("postgres").await;
    let owner: String = admin
        .query_one(
            "SELECT pg_get_userbyid(m.roleid)::text FROM pg_auth_members m \
               JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1",
            &[&t.role],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" OWNER TO \"{owner}\"; ALTER DATABASE \"{db}\" CONNECTION LIMIT -1; \
             ALTER DATABASE \"{db}\" RESET temp_file_limit"
        ))
        .await
        .unwrap();
    // As an older pgfleet left it, schema public belongs to the database's owner.
    cluster()
        .admin(db)
        .await
        .batch_execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        .await
        .unwrap();

    let mut repaired = guard(&s, &t.db_id).await;
    repaired.sort();
    assert_eq!(
        repaired,
        [
            "connection_limit",
            "database_owner",
            "database_settings",
            "login_settings",
            "owner_role"
        ],
        "{repaired:?}"
    );
    let row = admin
        .query_one(
            "SELECT rolsuper, datconnlimit FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba \
              WHERE datname = $1",
            &[&db],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the database is pgfleet's again");
    assert_eq!(
        row.get::<_, i32>(1),
        s.services().config().database_connection_limit
    );
    let mut settings: Vec<String> = admin
        .query(
            "SELECT coalesce(r.rolname, '-') || ':' || array_to_string(s.setconfig, ',') \
               FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole \
               JOIN pg_database d ON d.oid = s.setdatabase OR s.setdatabase = 0 \
              WHERE d.datname = $1 AND (s.setrole = 0 OR r.rolname IN ($2, $3))",
            &[&db, &t.role, &owner],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    settings.sort();
    assert_eq!(
        settings,
        [
            "-:temp_file_limit=2097152,idle_in_transaction_session_timeout=300000".to_string(),
            format!("{}:role={owner}", t.role)
        ]
    );
    // A new session is back to the database's defaults, as the owner role.
    let c2 = connect_tls(&t.conn_string).await.unwrap();
    let row = c2
        .query_one(
            "SELECT current_user::text, current_setting('statement_timeout'), \
                    current_setting('idle_in_transaction_session_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), owner);
    assert_eq!(row.get::<_, String>(1), "0");
    assert_eq!(row.get::<_, String>(2), "5min");
    c2.batch_execute(
        "CREATE TABLE public.after_the_move (v int); INSERT INTO after_the_move VALUES (1)",
    )
    .await
    .expect("the owner role still creates in public");
    assert!(guard(&s, &t.db_id).await.is_empty(), "repairs are stable");
    s.stop().await;
}

#[tokio::test]
async fn the_guard_pass_runs_in_one_replica_at_a_time() {
    let s = start(|_| {}).await;
    tenant(&s, "replicas").await;
    // Another replica in the middle of its pass holds the lock.
    let mut other = s.services().store().pool().acquire().await.unwrap();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(0x7066_6c74_i32)
        .bind(pgfleet_domain::services::guard::GUARD_LOCK)
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert!(locked);
    let report = s.services().guard().pass().await.unwrap();
    assert!(!report.ran && report.databases_checked == 0, "{report:?}");
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *other)
        .await
        .unwrap();
    let report = s.services().guard().pass().await.unwrap();
    assert!(report.ran && report.databases_checked == 1, "{report:?}");
    s.stop().await;
}

#[tokio::test]
async fn prisma_migrate_style_ddl_works_and_everything_belongs_to_the_owner_role() {
    let s = start(|_| {}).await;
    let t = tenant(&s, "prisma").await;
    let c = connect_tls(&t.conn_string).await.unwrap();
    c.batch_execute(
        r#"CREATE TABLE "_prisma_migrations" (
             "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
             "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL,
             "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
             "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
             "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
           CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
           CREATE TABLE "User" ("id" SERIAL NOT NULL, "email" TEXT NOT NULL, "role" "Role" NOT NULL DEFAULT 'USER',
             CONSTRAINT "User_pkey" PRIMARY KEY ("id"));
           CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
           ALTER TABLE "User" ADD COLUMN "name" TEXT;
           CREATE SCHEMA "app";
           CREATE TABLE "app"."Post" ("id" SERIAL PRIMARY KEY, "authorId" INTEGER NOT NULL);
           CREATE INDEX "Post_authorId_idx" ON "app"."Post"("authorId");
           ALTER TABLE "app"."Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")
             REFERENCES "public"."User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
           INSERT INTO "User" ("email") VALUES ('a@example.com');
           INSERT INTO "app"."Post" ("authorId") SELECT "id" FROM "User";
           CREATE EXTENSION IF NOT EXISTS pgcrypto;
           CREATE TEMP TABLE scratch (v int);"#,
    )
    .await
    .unwrap();
    let owners: Vec<String> = c
        .query(
            "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class c \
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'app') \
             UNION SELECT DISTINCT pg_get_userbyid(nspowner)::text FROM pg_namespace \
               WHERE nspname IN ('public', 'app')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let me: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        owners,
        std::slice::from_ref(&me),
        "objects and schemas belong to the owner role"
    );
    assert_ne!(me, t.role);
    // `prisma migrate reset` drops and recreates the public schema.
    c.batch_execute(
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE TABLE public.again (v int);",
    )
    .await
    .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM \"app\".\"Post\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 1,
        "dropping the schema drops the foreign key, not the rows"
    );
    assert!(guard(&s, &t.db_id).await.is_empty());
    // The connection can be rotated and deleted with all this in place.
    let r = s
        .post(&format!("/v1/connections/{}/rotate", t.conn_id), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn a_tenant_password_change_is_reverted_and_its_sessions_ended() {
    let s = start(|_| {}).await;
    let t = tenant(&s, "password").await;
    let c = connect_tls(&t.conn_string).await.unwrap();
    // PostgreSQL lets a role set its own password.
    c.batch_execute("SET ROLE NONE; ALTER ROLE CURRENT_USER PASSWORD 'chosen-by-the-tenant-1'")
        .await
        .unwrap();
    let mut cfg: tokio_postgres::Config = t.conn_string.parse().unwrap();
    cfg.password("chosen-by-the-tenant-1");
    let own = connect_with(&cfg)
        .await
        .expect("its own password works, for now");

    assert_eq!(guard(&s, &t.db_id).await, ["login_password"]);
    for (session, what) in [
        (&c, "the session that changed it"),
        (&own, "a session opened with it"),
    ] {
        let mut ended = false;
        for _ in 0..50 {
            if session.simple_query("SELECT 1").await.is_err() {
                ended = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ended, "{what} survives the repair");
    }
    let Err(e) = connect_with(&cfg).await else {
        panic!("the tenant's password is still accepted");
    };
    assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{e}");
    let back = connect_tls(&t.conn_string)
        .await
        .expect("the issued password works again");
    back.simple_query("SELECT 1").await.unwrap();
    assert!(guard(&s, &t.db_id).await.is_empty());
    s.stop().await;
}

async fn verifier(admin: &tokio_postgres::Client, role: String) -> String {
    admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

async fn connect_with(
    cfg: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = cfg.connect(crate::harness::tls_connector()).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

#[tokio::test]
async fn temp_file_limit_and_timeouts_apply_to_tenant_sessions() {
    let s = start(|cfg| {
        cfg.tenant.temp_file_limit_mb = 1;
        cfg.tenant.statement_timeout_secs = 1;
        cfg.tenant.idle_in_transaction_timeout_secs = 1;
    })
    .await;
    let t = tenant(&s, "resources").await;
    let c = connect_tls(&t.conn_string).await.unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('temp_file_limit'), current_setting('statement_timeout'), \
                    current_setting('idle_in_transaction_session_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        ("1MB".to_string(), "1s".to_string(), "1s".to_string())
    );
    // A sort that spills more than 1 MiB to disk.
    c.batch_execute("SET work_mem = '64kB'").await.unwrap();
    let e = refused(
        &c,
        "SELECT count(*) FROM (SELECT md5(g::text) FROM generate_series(1, 200000) g ORDER BY 1) s",
    )
    .await;
    assert_eq!(e.code(), &SqlState::CONFIGURATION_LIMIT_EXCEEDED, "{e}");
    assert!(e.message().contains("temp_file_limit"), "{e}");
    let e = refused(&c, "SET temp_file_limit = -1").await;
    assert_eq!(e.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{e}");

    let e = refused(&c, "SELECT pg_sleep(3)").await;
    assert_eq!(e.code(), &SqlState::QUERY_CANCELED, "{e}");
    assert!(e.message().contains("statement timeout"), "{e}");

    c.batch_execute("BEGIN").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        c.simple_query("SELECT 1").await.is_err(),
        "a session idle in a transaction past the timeout is ended"
    );
    s.stop().await;
}

#[tokio::test]
async fn password_verifiers_never_reach_pg_stat_statements_or_the_server_log() {
    let admin = cluster().admin("postgres").await;
    // Log every statement of pgfleet's superuser sessions, as a careless operator might.
    admin
        .batch_execute("ALTER ROLE postgres IN DATABASE postgres SET log_statement = 'all'")
        .await
        .unwrap();
    let s = start(|_| {}).await;
    let t = tenant(&s, "secrets").await;
    let mut verifiers = vec![verifier(&admin, t.role.clone()).await];
    for _ in 0..2 {
        let r = s
            .post(&format!("/v1/connections/{}/rotate", t.conn_id), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        verifiers.push(verifier(&admin, t.role.clone()).await);
    }
    // A drifted password set back by the guard goes the same way.
    let rotated = s
        .post(&format!("/v1/connections/{}/rotate", t.conn_id), json!({}))
        .await;
    let c = connect_tls(rotated.body["data"]["connectionString"].as_str().unwrap())
        .await
        .unwrap();
    verifiers.push(verifier(&admin, t.role.clone()).await);
    c.batch_execute("SET ROLE NONE; ALTER ROLE CURRENT_USER PASSWORD 'tenant-set'")
        .await
        .unwrap();
    assert_eq!(guard(&s, &t.db_id).await, ["login_password"]);
    admin
        .batch_execute("ALTER ROLE postgres IN DATABASE postgres RESET log_statement")
        .await
        .unwrap();
    verifiers.dedup();
    assert_eq!(verifiers.len(), 4, "each rotation set a new verifier");
    for v in &verifiers {
        assert!(v.starts_with("SCRAM-SHA-256$"), "{v}");
    }

    let texts: Vec<String> = admin
        .query("SELECT query FROM pg_stat_statements", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        texts.iter().any(|q| q.contains(&t.pg_database)),
        "pg_stat_statements tracks pgfleet's utility statements (ALTER DATABASE …)"
    );
    let log = std::fs::read_to_string(&cluster().log_file).unwrap();
    assert!(
        log.contains(&format!("ALTER DATABASE \"{}\"", t.pg_database)),
        "statements of pgfleet's sessions are logged"
    );
    for v in &verifiers {
        let salt_and_keys = v.trim_start_matches("SCRAM-SHA-256$");
        assert!(
            !texts.iter().any(|q| q.contains(salt_and_keys)),
            "a verifier is in pg_stat_statements"
        );
        assert!(
            !log.contains(salt_and_keys),
            "a verifier is in the server log"
        );
    }
    s.stop().await;
}
