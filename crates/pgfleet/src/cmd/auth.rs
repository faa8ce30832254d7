//! `pgfleet login`, `logout` and `whoami`, and where `login` keeps its tokens:
//! `$XDG_CONFIG_HOME/pgfleet/credentials.json` (default `~/.config/pgfleet/…`), mode 0600,
//! one entry per server URL.
//!
//! `login` runs the OAuth authorization-code flow with PKCE through a loopback redirect: it
//! listens on a free port of 127.0.0.1 (or `--redirect-port`), opens (or prints) the login
//! URL, catches the browser at `/callback` and exchanges the code. The app (a public client)
//! is registered with `http://127.0.0.1/callback`; the server accepts any port of a loopback
//! redirect URI (RFC 8252 §7.3):
//!
//! ```text
//! pgfleet admin apps create --name "pgfleet CLI" --public \
//!     --redirect-uri http://127.0.0.1/callback
//! pgfleet login --client-id <the printed client id>
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use pgfleet_client::{Client, OAuthClient, TokenStorage, Tokens, DEFAULT_SCOPE};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::output::{self, s};
use super::{normalize_url, Ctx, GlobalArgs};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Client id of a public OAuth app registered with redirect URI
    /// `http://127.0.0.1/callback` (default: the one used last time).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Loopback port of the redirect URI; 0 (the default) picks a free one, which any server
    /// following RFC 8252 accepts for a registered loopback URI.
    #[arg(long, default_value_t = 0)]
    pub redirect_port: u16,
    /// Only print the login URL; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Scopes to ask for.
    #[arg(long, default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Give up after this many seconds without a callback.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

/// The saved credentials of one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCredentials {
    pub client_id: String,
    /// Base of `/token` and `/revoke` (the server's OAuth issuer).
    pub auth_base: String,
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
}

/// `credentials.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CredentialsFile {
    /// Server base URL → credentials.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerCredentials>,
}

impl CredentialsFile {
    /// `$XDG_CONFIG_HOME/pgfleet/credentials.json`, else `~/.config/pgfleet/credentials.json`.
    pub fn default_path() -> anyhow::Result<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
        {
            Some(p) => p,
            None => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
                .context("neither XDG_CONFIG_HOME nor HOME is set")?,
        };
        Ok(base.join("pgfleet").join("credentials.json"))
    }

    /// The file's contents; empty when it does not exist.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::other(format!("{} is not valid: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the file atomically, readable by its owner only (0600, directory 0700).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::private_file::write(path, &body)
    }
}

/// Tokens of one server in `credentials.json`; refreshed tokens are written back.
#[derive(Debug)]
pub struct FileTokenStorage {
    path: PathBuf,
    server: String,
    lock: tokio::sync::Mutex<()>,
}

impl FileTokenStorage {
    pub fn new(path: PathBuf, server: String) -> Self {
        Self {
            path,
            server,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn update(&self, tokens: Option<Tokens>) -> pgfleet_client::Result<()> {
        let _g = self.lock.lock().await;
        let mut file = CredentialsFile::load(&self.path).map_err(storage_err)?;
        match file.servers.get_mut(&self.server) {
            Some(entry) => entry.tokens = tokens,
            None if tokens.is_none() => return Ok(()),
            None => {
                return Err(pgfleet_client::Error::Storage(
                    format!("no entry for {} in {}", self.server, self.path.display()).into(),
                ))
            }
        }
        file.save(&self.path).map_err(storage_err)
    }
}

fn storage_err(e: std::io::Error) -> pgfleet_client::Error {
    pgfleet_client::Error::Storage(Box::new(e))
}

#[async_trait::async_trait]
impl TokenStorage for FileTokenStorage {
    async fn get(&self) -> pgfleet_client::Result<Option<Tokens>> {
        let _g = self.lock.lock().await;
        let mut file = CredentialsFile::load(&self.path).map_err(storage_err)?;
        Ok(file
            .servers
            .remove(&self.server)
            .and_then(|entry| entry.tokens))
    }
    async fn set(&self, tokens: Tokens) -> pgfleet_client::Result<()> {
        self.update(Some(tokens)).await
    }
    async fn clear(&self) -> pgfleet_client::Result<()> {
        self.update(None).await
    }
}

/// The page the browser shows after the redirect.
fn page(ok: bool, text: &str) -> String {
    let title = if ok { "Signed in" } else { "Sign-in failed" };
    let esc = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>pgfleet: {title}</title>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{esc}</p>"
    );
    format!(
        "HTTP/1.1 {}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        if ok { "200 OK" } else { "400 Bad Request" },
        body.len()
    )
}

/// Reads one HTTP request head; returns its request target (`/callback?code=…`).
async fn read_target(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    Ok(match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    })
}

fn open_browser(url: &str) {
    for opener in ["xdg-open", "open"] {
        if let Ok(mut child) = tokio::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            return;
        }
    }
}

/// `pgfleet login`.
pub async fn login(g: &GlobalArgs, args: &LoginArgs) -> anyhow::Result<()> {
    let api_url = normalize_url(&g.api_url);
    let path = CredentialsFile::default_path()?;
    let mut file = CredentialsFile::load(&path)?;
    let Some(client_id) = args
        .client_id
        .clone()
        .or_else(|| file.servers.get(&api_url).map(|e| e.client_id.clone()))
    else {
        bail!(
            "pass --client-id: the id of a public OAuth app registered with redirect URI \
             http://127.0.0.1/callback (an operator creates one with `pgfleet admin apps \
             create --name \"pgfleet CLI\" --public --redirect-uri \
             http://127.0.0.1/callback`)"
        );
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.redirect_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for the redirect (choose another with \
                 --redirect-port, or leave it out for a free one)",
                args.redirect_port
            )
        })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let http = super::http(g)?;
    let oauth =
        OAuthClient::discover_with(http.clone(), &api_url, &client_id, &redirect_uri).await?;
    let (url, state, verifier) = oauth.login_url(&args.scope);
    eprintln!("Open this URL in a browser to sign in:\n\n  {url}\n");
    if !args.no_browser {
        open_browser(url.as_str());
    }
    eprintln!("Waiting for the browser at {redirect_uri} …");
    let exchange = async {
        loop {
            let (mut stream, _) = listener.accept().await?;
            let Some(target) = read_target(&mut stream).await? else {
                continue;
            };
            if !target.starts_with("/callback") {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let result = oauth
                .handle_callback(
                    &format!("http://127.0.0.1:{port}{target}"),
                    &state,
                    &verifier,
                )
                .await;
            let reply = match &result {
                Ok(_) => page(
                    true,
                    "You are signed in to pgfleet. You can close this tab.",
                ),
                Err(e) => page(false, &e.to_string()),
            };
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
            return anyhow::Ok(result?);
        }
    };
    let tokens = tokio::time::timeout(Duration::from_secs(args.timeout), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no sign-in within {} s", args.timeout))??;
    file.servers.insert(
        api_url.clone(),
        ServerCredentials {
            client_id,
            auth_base: oauth.auth_base().as_str().trim_end_matches('/').to_string(),
            redirect_uri,
            tokens: Some(tokens),
        },
    );
    file.save(&path)
        .with_context(|| format!("cannot save {}", path.display()))?;
    let storage = Arc::new(FileTokenStorage::new(path.clone(), api_url.clone()));
    let client = Client::builder(&api_url)
        .http_client(http)
        .oauth(oauth, storage)
        .build()?;
    let me = client.me().await?;
    if g.json {
        return output::json(&me);
    }
    println!(
        "Signed in to {api_url}{}{} (tokens in {})",
        me.user
            .as_ref()
            .map(|u| format!(" as {}", u.email))
            .unwrap_or_default(),
        me.workspace
            .as_ref()
            .map(|w| format!(", workspace {} ({})", w.name, w.id))
            .unwrap_or_default(),
        path.display()
    );
    Ok(())
}

/// `pgfleet logout`: revokes the saved session (best effort) and forgets its tokens.
pub async fn logout(g: &GlobalArgs) -> anyhow::Result<()> {
    let api_url = normalize_url(&g.api_url);
    let path = CredentialsFile::default_path()?;
    let mut file = CredentialsFile::load(&path)?;
    let Some(entry) = file.servers.get_mut(&api_url) else {
        println!("Not signed in to {api_url}");
        return Ok(());
    };
    if let Some(tokens) = entry.tokens.take() {
        let oauth = OAuthClient::new(&entry.auth_base, &entry.client_id, &entry.redirect_uri)?
            .with_http_client(super::http(g)?);
        let token = tokens
            .refresh_token
            .as_deref()
            .unwrap_or(&tokens.access_token);
        if let Err(e) = oauth.revoke(token).await {
            eprintln!("pgfleet: could not revoke the session on the server: {e}");
        }
    }
    file.save(&path)
        .with_context(|| format!("cannot save {}", path.display()))?;
    println!("Signed out of {api_url}");
    Ok(())
}

/// `pgfleet whoami`.
pub async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let me = ctx.client.me().await?;
    if ctx.json {
        return output::json(&me);
    }
    let kind = serde_json::to_value(me.credential.kind)?
        .as_str()
        .unwrap_or_default()
        .to_string();
    output::kv(&[
        ("credential", s(kind)),
        ("credential id", me.credential.id.clone()),
        ("user", me.user.as_ref().map(|u| u.email.clone())),
        (
            "workspace",
            me.workspace
                .as_ref()
                .map(|w| format!("{} ({})", w.name, w.id)),
        ),
    ]);
    Ok(())
}
