//! The first hour of a newcomer (issue 16, half B): what `pgfleet serve` says once it
//! listens (console, docs, the CLI binary, where to sign in), `GET /` → the console, a log
//! without colour codes when stderr is a file, the default admin e-mail (and an existing
//! install keeping its own), and the CLI: destructive commands refuse without a terminal
//! unless `--yes`, `--pooled` and both endpoints, errors said once with a hint at
//! `--api-url` when no server answers.

use std::process::Stdio;

use pgfleet::config::Secret;
use reqwest::StatusCode;

use crate::browser::{bootstrap, Browser};
use crate::client_sdk::{Cli, Out};
use crate::harness::{cluster, psql, TestServer};
use crate::lifecycle::{data_dir, Server};

#[tokio::test]
async fn serve_banner_root_redirect_plain_log_and_default_admin() {
    let dir = data_dir();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("pgfleet.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let s = Server::start_with(dir.path(), &[("RUST_LOG", "info")], Stdio::from(log));
    let base = s.base.clone();
    let out = s.stdout().to_string();

    // The banner: console, docs, the CLI binary and where the sign-in credentials are; the
    // `listening` line (which scripts wait for) comes last.
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&format!("  console:  {base}/console").as_str()),
        "{out}"
    );
    assert!(
        out.contains(&format!("{base}/docs")) && out.contains(&format!("{base}/v1/doc")),
        "{out}"
    );
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_pgfleet")).unwrap();
    assert!(
        out.contains(&format!("  CLI:      {} ", exe.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "export PATH=\"{}:$PATH\"",
            exe.parent().unwrap().display()
        )),
        "{out}"
    );
    let bootstrap_file = dir.path().join("bootstrap.txt");
    let sign_in = lines
        .iter()
        .find(|l| l.starts_with("  sign in:  "))
        .unwrap_or_else(|| panic!("no sign-in line in {out}"));
    assert!(
        sign_in.contains(&bootstrap_file.display().to_string())
            && sign_in.contains("admin_password"),
        "{sign_in}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(format!("pgfleet listening on {base}").as_str())
    );

    // The default admin e-mail is a valid address, and signs in.
    let text = std::fs::read_to_string(&bootstrap_file).unwrap();
    assert!(
        text.contains("admin_email = admin@pgfleet.localhost\n"),
        "{text}"
    );
    assert!(
        out.contains("admin e-mail:   admin@pgfleet.localhost"),
        "{out}"
    );
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("admin_password = "))
        .unwrap()
        .to_string();

    // `GET /` sends a browser to the console, which (signed out) sends it to sign in.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console");
    let r = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.url().path(), "/login");
    let mut b = Browser::at(&base, None);
    b.sign_in("admin@pgfleet.localhost", &password, "/console")
        .await;
    assert!(b.signed_in(), "the default admin e-mail signs in");

    // The log went to a file: plain text, no ANSI colour codes.
    s.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("pgfleet is listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in the log file:\n{log}"
    );
}

#[tokio::test]
async fn an_existing_admin_keeps_its_email() {
    // A store bootstrapped by an earlier version, whose default was `admin@localhost`.
    // (The same install: the same secret encrypting the OAuth signing key.)
    let kek = || Some(Secret::new("newcomer test key-encryption secret"));
    let old = TestServer::start_with(|c| {
        c.admin_email = "admin@localhost".into();
        c.oauth.key_encryption_key = kek();
    })
    .await;
    let metadata = old.metadata_db();
    let token = old.token.clone();
    let password = bootstrap(&old).0;
    old.stop().await;

    // The new version (new default) starts on it: the admin is who it was, and signs in.
    let new = TestServer::start_with(|c| {
        c.metadata.url = Some(Secret::new(cluster().url(&metadata)));
        c.oauth.key_encryption_key = kek();
    })
    .await;
    assert!(new.running.as_ref().unwrap().bootstrap.is_none());
    let me: serde_json::Value = new
        .http
        .get(format!("{}/v1/me", new.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["user"]["email"], "admin@localhost", "{me}");
    let mut b = Browser::new(&new);
    b.sign_in("admin@localhost", &password, "/console").await;
    assert!(b.signed_in());
    new.stop().await;
}

/// A refused destructive command: exit 1, nothing on stdout, a message saying to pass --yes.
#[track_caller]
fn refused(out: &Out) {
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr.contains("nothing was done") && out.stderr.contains("pass --yes"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn destructive_commands_refuse_without_a_terminal_and_act_with_yes() {
    let s = TestServer::start().await;
    let cli = Cli::new(&s);
    let out = cli
        .run(&["projects", "create", "--name", "keep-me", "--wait"])
        .await
        .ok();
    let (pid, db) = (out.field("id"), out.field("database"));
    let out = cli
        .run(&["connections", "create", "--database", &db, "--name", "c"])
        .await
        .ok();
    let (cid, conn) = (out.field("id"), out.field("connection string"));
    let out = cli.run(&["service-tokens", "create", "doomed"]).await.ok();
    let (tid, token) = (out.field("id"), out.field("token"));

    // Without a terminal and without --yes: refused, before any request.
    for args in [
        vec!["projects", "delete", pid.as_str()],
        vec![
            "projects",
            "transfer",
            pid.as_str(),
            "--to-token",
            "pgfst_nope",
        ],
        vec!["databases", "delete", db.as_str()],
        vec!["connections", "rotate", cid.as_str()],
        vec!["connections", "delete", cid.as_str()],
        vec!["service-tokens", "delete", tid.as_str()],
        vec!["integrations", "revoke", "intg_nope"],
        vec!["backups", "restore", db.as_str(), "--backup", "bkp_nope"],
    ] {
        let out = cli.run(&args).await;
        refused(&out);
    }
    // ... and nothing happened.
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/v1/databases/{db}")).await.status,
        StatusCode::OK
    );
    let (ok, got, _) = psql(&conn, "select 1").await;
    assert!(ok, "the connection was not rotated nor deleted: {got}");
    cli.run_as(Some(&token), &["whoami"]).await.ok();

    // With --yes (or -y) they act.
    let out = cli
        .run(&["connections", "rotate", &cid, "--yes"])
        .await
        .ok();
    assert_ne!(out.field("connection string"), conn);
    let (ok, _, _) = psql(&conn, "select 1").await;
    assert!(!ok, "the rotated-away password still works");
    cli.run(&["service-tokens", "delete", &tid, "-y"])
        .await
        .ok();
    assert_eq!(cli.run_as(Some(&token), &["whoami"]).await.code, 1);

    // On a terminal it asks: anything but yes keeps, yes acts.
    let (code, text) = on_a_terminal(&s, &format!("connections delete {cid}"), "n\n").await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("[y/N]") && text.contains("nothing was done"),
        "{text}"
    );
    assert_eq!(
        s.get(&format!("/v1/connections/{cid}")).await.status,
        StatusCode::OK
    );
    let (code, text) = on_a_terminal(&s, &format!("projects delete {pid}"), "y\n").await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("Deleted project {pid}")), "{text}");
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

/// Runs `pgfleet ARGS` (with the server's URL and token) on a terminal, through util-linux
/// `script`, typing `answer`: its exit code and what the terminal showed.
async fn on_a_terminal(s: &TestServer, args: &str, answer: &str) -> (i32, String) {
    use tokio::io::AsyncWriteExt as _;
    let cmd = format!(
        "{} --api-url {} --token {} {args}",
        env!("CARGO_BIN_EXE_pgfleet"),
        s.base,
        s.token
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("PGFLEET_API_URL")
        .env_remove("PGFLEET_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("util-linux `script` runs (package bsdutils)");
    // Typed ahead: the terminal keeps it until pgfleet reads its answer. Stdin stays open
    // until pgfleet has exited.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("pgfleet answered in time")
        .unwrap();
    drop(stdin);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The port of a `postgresql://…@host:port/…` string.
fn port_of(conn: &str) -> u16 {
    url::Url::parse(conn).unwrap().port().unwrap()
}

#[tokio::test]
async fn pooled_flag_and_both_endpoints() {
    let s = TestServer::start().await;
    let pooler_port = s.running.as_ref().unwrap().pooler_addr.unwrap().port();
    let cli = Cli::new(&s);

    // `--pooled`: the pooled string is the connection string, the direct one is there too.
    let out = cli
        .run(&["projects", "create", "--name", "p", "--wait", "--pooled"])
        .await
        .ok();
    let db = out.field("database");
    let pooled = out.field("connection string");
    assert_eq!(port_of(&pooled), pooler_port, "{}", out.stdout);
    assert_ne!(port_of(&out.field("direct string")), pooler_port);
    let (ok, got, _) = psql(&pooled, "select 1").await;
    assert!(ok && got == "1", "{got}");

    let out = cli
        .run(&["connections", "create", "--database", &db, "--pooled"])
        .await
        .ok();
    assert_eq!(port_of(&out.field("connection string")), pooler_port);
    let cid = out.field("id");

    // Without it: the direct string, and the pooled one beside it.
    let out = cli
        .run(&["connections", "create", "--database", &db])
        .await
        .ok();
    assert_ne!(port_of(&out.field("connection string")), pooler_port);
    assert_eq!(port_of(&out.field("pooled string")), pooler_port);
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);

    // Where a connection is shown, both endpoints are.
    let out = cli.run(&["connections", "get", &cid]).await.ok();
    assert!(out.field("direct endpoint").contains(':'), "{}", out.stdout);
    assert!(
        out.field("pooled endpoint")
            .ends_with(&format!(":{pooler_port}")),
        "{}",
        out.stdout
    );
    let out = cli
        .run(&["connections", "list", "--database", &db])
        .await
        .ok();
    let header = out.stdout.lines().next().unwrap();
    assert!(
        header.contains("DIRECT") && header.contains("POOLED"),
        "{}",
        out.stdout
    );
    let out = cli.run(&["databases", "get", &db]).await.ok();
    assert!(
        out.field("pooled endpoint")
            .ends_with(&format!(":{pooler_port}")),
        "{}",
        out.stdout
    );
    s.stop().await;
}

#[tokio::test]
async fn unreachable_server_is_said_once_with_a_hint() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgfleet"))
        .env_remove("PGFLEET_API_URL")
        .env_remove("PGFLEET_TOKEN")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .args([
            "--api-url",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "pgfst_whatever",
            "projects",
            "list",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("pgfleet: cannot reach the server"),
        "{stderr}"
    );
    assert_eq!(
        lines[0].matches("error sending request").count(),
        1,
        "the cause is repeated: {stderr}"
    );
    assert!(
        lines[1].starts_with("hint: ")
            && lines[1].contains(&format!("http://127.0.0.1:{port}"))
            && lines[1].contains("--api-url")
            && lines[1].contains("PGFLEET_API_URL"),
        "{stderr}"
    );
}
