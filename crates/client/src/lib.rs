//! Async Rust SDK for the pgfleet `/v1` API (wire-compatible with the Prisma Postgres
//! Management API), on the same wire types as the server ([`pgfleet_api_types`]).
//!
//! * Every operation is a method: [`Client::me`], [`Client::workspaces`],
//!   [`Client::projects`], [`Client::databases`], [`Client::connections`],
//!   [`Client::backups`] (and [`Databases::restore`], [`Databases::usage`]),
//!   [`Client::regions`], [`Client::regions_postgres`], [`Client::service_tokens`],
//!   [`Client::integrations`], [`Client::webhooks`] (signed webhook endpoints and their
//!   deliveries, pgfleet's extension).
//! * Lists come a page at a time (`list`) or whole as a [`futures::Stream`] that follows
//!   `pagination.nextCursor` (`list_all`).
//! * Errors are typed: [`Error::Api`] carries the server's status, code, message, hint and
//!   request id; [`Error::Transport`] a failure to get an answer.
//! * The OAuth half: [`OAuthClient::login_url`] (PKCE S256 and a random `state`),
//!   [`OAuthClient::handle_callback`] (checks the state, exchanges the code), a
//!   [`TokenStorage`] trait with [`MemoryTokenStorage`], and a [`Client`] that refreshes
//!   the access token when the server answers 401, one refresh at a time however many
//!   requests fail together.
//!
//! # With a service token
//!
//! ```no_run
//! use futures::TryStreamExt as _;
//! use pgfleet_client::{Client, Error};
//! use pgfleet_client::types::project::CreateProject;
//!
//! # async fn run() -> Result<(), Error> {
//! let client = Client::new("http://127.0.0.1:8080", "pgfst_…")?;
//! let me = client.me().await?;
//! println!("signed in to {:?}", me.workspace);
//!
//! let created = client
//!     .projects()
//!     .create(&CreateProject {
//!         name: Some("demo".into()),
//!         region: Some("us-east-1".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! if let Some(db) = &created.database {
//!     println!("connect with {:?}", db.connection_string);
//! }
//!
//! // Every project, page after page.
//! let all: Vec<_> = client.projects().list_all().try_collect().await?;
//! println!("{} projects", all.len());
//!
//! match client.databases().get("db_unknown").await {
//!     Err(Error::Api { status: 404, code, message, .. }) => println!("{code}: {message}"),
//!     other => println!("{other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # With OAuth
//!
//! A public app registered with redirect URI `http://127.0.0.1/callback` (any port of a
//! loopback redirect URI is accepted):
//!
//! ```no_run
//! use std::sync::Arc;
//! use pgfleet_client::{Client, MemoryTokenStorage, OAuthClient, TokenStorage, DEFAULT_SCOPE};
//!
//! # async fn run(callback_url_from_browser: String) -> Result<(), pgfleet_client::Error> {
//! let oauth = OAuthClient::new(
//!     "http://127.0.0.1:8080",
//!     "app_…",
//!     "http://127.0.0.1:8976/callback",
//! )?;
//! let (url, state, verifier) = oauth.login_url(DEFAULT_SCOPE);
//! println!("open {url}");
//! // … the browser comes back to the redirect URI with ?code=…&state=…
//! let tokens = oauth
//!     .handle_callback(&callback_url_from_browser, &state, &verifier)
//!     .await?;
//!
//! let storage = Arc::new(MemoryTokenStorage::new());
//! storage.set(tokens).await?;
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .oauth(oauth, storage)
//!     .build()?;
//! // Expired access tokens are refreshed (and the new tokens stored) transparently.
//! let me = client.me().await?;
//! # let _ = me;
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod oauth;
mod resources;
mod webhooks;

pub use client::{http_client, Client, ClientBuilder};
pub use error::{Error, Result};
pub use oauth::{
    code_challenge, LoginRequest, MemoryTokenStorage, OAuthClient, TokenStorage, Tokens,
    ADMIN_SCOPE, DEFAULT_SCOPE, OFFLINE_SCOPE,
};
pub use resources::{
    Backups, Connections, Databases, Integrations, Projects, ServiceTokens, Workspaces,
};
pub use webhooks::Webhooks;

/// The wire types (`pgfleet-api-types`), re-exported.
pub use pgfleet_api_types as types;
pub use pgfleet_api_types::PageParams;
