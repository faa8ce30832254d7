//! The real `pgfleet` binary in embedded mode: first and second start, shutdown leaves no
//! PostgreSQL behind, a killed PostgreSQL is restarted, a killed pgfleet starts cleanly next
//! time, bad configuration is refused.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_pgfleet");

pub(crate) fn data_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("pgfleet-lc-")
        .tempdir()
        .unwrap();
    // The postgres OS user must be able to traverse to the cluster.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

pub(crate) fn pgfleet(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("PGFLEET_") {
            cmd.env_remove(k);
        }
    }
    // Tests run in parallel: the pooler takes a free port too.
    cmd.env("PGFLEET_POOLER__LISTEN", "127.0.0.1:0");
    cmd.env("PGFLEET_ACCELERATE__LISTEN", "127.0.0.1:0");
    cmd
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    stdout: String,
    dir: PathBuf,
}

impl Server {
    pub(crate) fn start(dir: &Path) -> Server {
        Self::start_with_env(dir, &[])
    }

    /// Starts `pgfleet serve` with extra environment variables (e.g. `PGFLEET_FAILPOINTS`).
    pub(crate) fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_configured(dir, env, |_| {})
    }

    /// Starts `pgfleet serve` with extra environment variables and its log (stderr) sent to
    /// `stderr`.
    pub(crate) fn start_with(dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> Server {
        Self::start_configured(dir, env, |c| {
            c.stderr(stderr);
        })
    }

    /// Like `start_with_env`, with a last say on the command (e.g. a `pre_exec`).
    pub(crate) fn start_configured(
        dir: &Path,
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = pgfleet(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ]);
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = String::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("server did not start ({e}): {stdout}");
                }
            };
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some(addr) = line.strip_prefix("pgfleet listening on ") {
                return Server {
                    child,
                    base: addr.trim().to_string(),
                    stdout,
                    dir: dir.to_path_buf(),
                };
            }
        }
    }

    /// What the server printed on stdout up to its `pgfleet listening on` line.
    pub(crate) fn stdout(&self) -> &str {
        &self.stdout
    }

    pub(crate) fn token(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("bootstrap.txt")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("service_token = "))
            .unwrap()
            .to_string()
    }

    /// The pooled endpoint's address, from the line the server printed.
    pub(crate) fn pooler_addr(&self) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("pgfleet pooler listening on postgresql://"))
            .unwrap_or_else(|| panic!("no pooler address in {}", self.stdout))
            .trim()
            .to_string()
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` to `path` with `token` through `http`: the response's JSON body.
    pub(crate) async fn post_json(
        &self,
        http: &reqwest::Client,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        http.post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A new project and a connection (named `connection`) to its database, made through
    /// `http`: the connection's response body.
    pub(crate) async fn database_with_connection(
        &self,
        http: &reqwest::Client,
        token: &str,
        project: &str,
        connection: &str,
    ) -> serde_json::Value {
        let p = self
            .post_json(
                http,
                "/v1/projects",
                token,
                serde_json::json!({"name": project}),
            )
            .await;
        let db = p["data"]["database"]["id"].as_str().unwrap();
        self.post_json(
            http,
            &format!("/v1/databases/{db}/connections"),
            token,
            serde_json::json!({"name": connection}),
        )
        .await
    }

    pub(crate) fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn terminate(mut self) {
        self.signal(Signal::SIGTERM);
        let status = wait_timeout(&mut self.child, Duration::from_secs(60));
        drop(self);
        assert!(status.success(), "pgfleet exited with {status}");
    }
}

impl Drop for Server {
    /// A failed test must not leave a server (and its PostgreSQL) behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PIDs of processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

pub(crate) fn postmaster_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("postgres/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

pub(crate) fn assert_no_postgres(dir: &Path) {
    let pgdata = dir.join("postgres").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(&pgdata).is_empty() {
        assert!(
            Instant::now() < deadline,
            "postgres processes left behind: {:?}",
            processes_mentioning(&pgdata)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn first_and_second_start() {
    let dir = data_dir();
    let s = Server::start(dir.path());
    assert!(s.stdout.contains("first start"), "{}", s.stdout);
    let file = dir.path().join("bootstrap.txt");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = s.token();
    assert!(
        s.stdout.contains(&token),
        "token printed once at first start"
    );
    let me: serde_json::Value = s.get("/v1/me", &token).await.json().await.unwrap();
    let ws = me["data"]["workspace"]["id"].as_str().unwrap().to_string();
    // Create something to see it survive the restart.
    let created = s
        .post_json(
            &reqwest::Client::new(),
            &format!("/v1/workspaces/{ws}/service-tokens"),
            &token,
            serde_json::json!({"name": "survivor"}),
        )
        .await;
    let second_token = created["data"]["value"].as_str().unwrap().to_string();
    let bootstrap_before = std::fs::read_to_string(&file).unwrap();
    s.terminate();
    assert_no_postgres(dir.path());

    let s = Server::start(dir.path());
    assert!(
        !s.stdout.contains("first start"),
        "no second bootstrap: {}",
        s.stdout
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), bootstrap_before);
    for t in [&token, &second_token] {
        let r = s.get("/v1/me", t).await;
        assert_eq!(r.status(), 200);
    }
    let me2: serde_json::Value = s.get("/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me2["data"]["workspace"]["id"], ws.as_str());
    s.terminate();
    assert_no_postgres(dir.path());
}

#[tokio::test]
async fn killed_postgres_is_restarted() {
    let dir = data_dir();
    let s = Server::start(dir.path());
    let token = s.token();
    let old = postmaster_pid(dir.path()).unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "postgres was not restarted");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ready = reqwest::get(format!("{}/readyz", s.base))
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ready && postmaster_pid(dir.path()).is_some_and(|p| p != old) {
            break;
        }
    }
    // The API works again (the pool reconnects).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get("/v1/me", &token).await;
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "API did not recover: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.terminate();
    assert_no_postgres(dir.path());
}

#[tokio::test]
async fn killed_server_starts_cleanly_next_time() {
    let dir = data_dir();
    let mut s = Server::start(dir.path());
    let token = s.token();
    s.signal(Signal::SIGKILL);
    wait_timeout(&mut s.child, Duration::from_secs(10));

    let s = Server::start(dir.path());
    assert!(!s.stdout.contains("first start"));
    assert_eq!(s.get("/v1/me", &token).await.status(), 200);
    s.terminate();
    assert_no_postgres(dir.path());
}

#[test]
fn bad_configuration_is_refused() {
    let dir = data_dir();
    let cfg = dir.path().join("pgfleet.toml");
    let run = |args: &[&str]| {
        let out = pgfleet(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };

    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlisen_typo = 1\n").unwrap();
    let (code, err, _) = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("lisen_typo"), "{err}");

    std::fs::write(&cfg, "[regions.\"US EAST\"]\nservers = [\"embedded\"]\n").unwrap();
    let (code, err, _) = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("region id"), "{err}");

    std::fs::write(&cfg, "[metadata]\nurl = \"postgres://x@localhost/db\"\n").unwrap();
    let (code, err, _) = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("regions"), "{err}");

    let (code, err, _) = run(&["serve", "--config", "/nonexistent/pgfleet.toml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not found"), "{err}");

    std::fs::write(&cfg, "[postgres]\nbin_dir = \"/nonexistent\"\n").unwrap();
    let (code, err, _) = run(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("apt-get install postgresql"), "{err}");

    // Secrets are redacted when printed; env overrides the file; unknown env keys are refused.
    std::fs::write(&cfg, "admin_email = \"file@example.com\"\n").unwrap();
    let out = pgfleet(&["config", "print", "--config", cfg.to_str().unwrap()])
        .env("PGFLEET_BOOTSTRAP_TOKEN", "super-secret-value-123")
        .env("PGFLEET_POSTGRES__PORT", "6543")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!text.contains("super-secret-value-123"), "{text}");
    assert!(
        text.contains("<redacted>") && text.contains("file@example.com") && text.contains("6543"),
        "{text}"
    );
    let out = pgfleet(&["config", "print"])
        .env("PGFLEET_NOT_A_KEY", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_a_key"));
}
