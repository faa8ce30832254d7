//! The [`Client`]: base URL, credentials (a fixed token, or OAuth tokens in a
//! [`TokenStorage`] refreshed on 401 with one refresh in flight), and the request machinery
//! every resource method goes through.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use pgfleet_api_types::region::{Items, PostgresRegion, Region};
use pgfleet_api_types::{Data, List, Me, PageParams};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::error::{Error, Result};
use crate::oauth::{OAuthClient, TokenStorage};

/// A handle on a pgfleet server's `/v1` API. Cheap to clone (the clones share connections
/// and credentials).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: Credentials,
}

enum Credentials {
    None,
    Token(String),
    OAuth(Box<OAuthSession>),
}

struct OAuthSession {
    oauth: OAuthClient,
    storage: Arc<dyn TokenStorage>,
    /// Held while a refresh runs: requests that hit 401 meanwhile wait for it and use its
    /// result instead of refreshing again (the server would see a reused refresh token).
    refresh_lock: tokio::sync::Mutex<()>,
}

impl OAuthSession {
    async fn access_token(&self) -> Result<String> {
        self.storage
            .get()
            .await?
            .map(|t| t.access_token)
            .ok_or(Error::NotAuthenticated)
    }

    /// After `failed` was refused with 401: the token to retry with, or `None` when there
    /// is no way to get a new one.
    async fn refresh_after(&self, failed: &str) -> Result<Option<String>> {
        let _guard = self.refresh_lock.lock().await;
        let Some(current) = self.storage.get().await? else {
            return Ok(None);
        };
        if current.access_token != failed {
            // Someone refreshed while we waited (or signed in again): use theirs.
            return Ok(Some(current.access_token));
        }
        let Some(refresh_token) = current.refresh_token.as_deref() else {
            return Ok(None);
        };
        let tokens = self.oauth.refresh(refresh_token).await?;
        let access = tokens.access_token.clone();
        self.storage.set(tokens).await?;
        Ok(Some(access))
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base: String,
    http: Option<reqwest::Client>,
    auth: Credentials,
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Authenticate with a fixed bearer token (a service token, or an access token you
    /// manage yourself).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Credentials::Token(token.into());
        self
    }

    /// Authenticate with OAuth tokens kept in `storage`, refreshed through `oauth` when the
    /// server answers 401.
    pub fn oauth(mut self, oauth: OAuthClient, storage: Arc<dyn TokenStorage>) -> Self {
        self.auth = Credentials::OAuth(Box::new(OAuthSession {
            oauth,
            storage,
            refresh_lock: tokio::sync::Mutex::new(()),
        }));
        self
    }

    /// Use this HTTP client (proxies, TLS, timeouts) instead of a default one.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Also trust this PEM certificate (e.g. a private CA in front of the server) besides
    /// the system's roots, for `https://` base URLs.
    pub fn root_certificate_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.roots.push(reqwest::Certificate::from_pem(pem)?);
        Ok(self)
    }

    /// Timeout of each request of the default HTTP client (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        let base = Url::parse(&self.base).map_err(|e| Error::Url {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Url {
                url: self.base,
                reason: "expected an http:// or https:// base URL".to_string(),
            });
        }
        let http = match self.http {
            Some(h) => h,
            None => http_client(self.timeout, &self.roots)?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth: self.auth,
            }),
        })
    }
}

/// The default HTTP client: rustls with the system's roots plus `roots`.
pub fn http_client(timeout: Duration, roots: &[reqwest::Certificate]) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("pgfleet-client/", env!("CARGO_PKG_VERSION")));
    for r in roots {
        b = b.add_root_certificate(r.clone());
    }
    Ok(b.build()?)
}

/// Query parameters of one request.
pub(crate) type Query = Vec<(&'static str, String)>;

pub(crate) fn page_query(page: &PageParams) -> Query {
    let mut q = Query::new();
    if let Some(c) = &page.cursor {
        q.push(("cursor", c.clone()));
    }
    if let Some(l) = page.limit {
        q.push(("limit", l.to_string()));
    }
    q
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`) using a fixed
    /// bearer token.
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Self> {
        Self::builder(base_url).token(token).build()
    }

    /// A builder, for OAuth, a custom HTTP client or no credentials at all.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base: base_url.to_string(),
            http: None,
            auth: Credentials::None,
            timeout: Duration::from_secs(120),
            roots: Vec::new(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `GET /v1/me`: who the credential belongs to.
    pub async fn me(&self) -> Result<Me> {
        self.get(&["me"], Query::new()).await
    }

    /// `GET /v1/regions`: every region of every product.
    pub async fn regions(&self) -> Result<Vec<Region>> {
        let items: Items<Region> = self.get_raw(&["regions"], Query::new()).await?;
        Ok(items.data)
    }

    /// `GET /v1/regions/postgres`: where databases can be created.
    pub async fn regions_postgres(&self) -> Result<Vec<PostgresRegion>> {
        let items: Items<PostgresRegion> =
            self.get_raw(&["regions", "postgres"], Query::new()).await?;
        Ok(items.data)
    }

    // ----- request machinery -----

    fn url(&self, segments: &[&str], query: &Query) -> Url {
        let mut u = self.inner.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().push("v1").extend(segments);
        }
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        u
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        token: Option<&str>,
    ) -> Result<reqwest::Response> {
        let mut req = self.inner.http.request(method.clone(), url.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req.send().await?)
    }

    /// Sends a request; a 2xx response is returned, anything else becomes an [`Error`].
    /// With OAuth, a 401 triggers one refresh (shared with concurrent requests) and one
    /// retry.
    pub(crate) async fn execute(
        &self,
        method: Method,
        segments: &[&str],
        query: Query,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response> {
        let url = self.url(segments, &query);
        let token = match &self.inner.auth {
            Credentials::None => None,
            Credentials::Token(t) => Some(t.clone()),
            Credentials::OAuth(o) => Some(o.access_token().await?),
        };
        let resp = self
            .send_once(&method, &url, body.as_ref(), token.as_deref())
            .await?;
        if resp.status().as_u16() == 401 {
            if let (Credentials::OAuth(o), Some(failed)) = (&self.inner.auth, token.as_deref()) {
                let refused = error_of(resp).await;
                // A 401 `not_found` names a resource the credential cannot see, not a bad
                // token: a refresh would not change the answer.
                if refused.code() == Some("not_found") {
                    return Err(refused);
                }
                return match o.refresh_after(failed).await? {
                    Some(fresh) => {
                        let resp = self
                            .send_once(&method, &url, body.as_ref(), Some(&fresh))
                            .await?;
                        check(resp).await
                    }
                    None => Err(refused),
                };
            }
        }
        check(resp).await
    }

    pub(crate) async fn request_raw<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Query,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let resp = self.execute(method, segments, query, body).await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            status,
            message: e.to_string(),
        })
    }

    /// A request answered with `{"data": T}`.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let d: Data<T> = self
            .request_raw(method, segments, Query::new(), body)
            .await?;
        Ok(d.data)
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: Query,
    ) -> Result<T> {
        let d: Data<T> = self.request_raw(Method::GET, segments, query, None).await?;
        Ok(d.data)
    }

    pub(crate) async fn get_raw<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: Query,
    ) -> Result<T> {
        self.request_raw(Method::GET, segments, query, None).await
    }

    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: Query,
    ) -> Result<List<T>> {
        self.get_raw(segments, query).await
    }

    /// A request answered with no body (204).
    pub(crate) async fn request_empty(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
    ) -> Result<()> {
        self.execute(method, segments, Query::new(), body).await?;
        Ok(())
    }

    /// Every item of a paginated list, fetching pages (100 items each) as the stream is
    /// read and following `pagination.nextCursor`.
    pub(crate) fn paginate<T>(
        &self,
        segments: Vec<String>,
        filters: Query,
    ) -> impl Stream<Item = Result<T>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        let client = self.clone();
        futures::stream::try_unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            let segments = segments.clone();
            let mut query = filters.clone();
            async move {
                let Some(cursor) = state else {
                    return Ok(None);
                };
                if let Some(c) = cursor {
                    query.push(("cursor", c));
                }
                query.push(("limit", "100".to_string()));
                let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
                let page: List<T> = client.list(&segs, query).await?;
                let next = match (page.pagination.has_more, page.pagination.next_cursor) {
                    (true, Some(c)) => Some(Some(c)),
                    _ => None,
                };
                Ok::<_, Error>(Some((page.data, next)))
            }
        })
        .map_ok(|items| futures::stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

pub(crate) fn body<T: Serialize>(v: &T) -> Result<Option<serde_json::Value>> {
    serde_json::to_value(v)
        .map(Some)
        .map_err(|e| Error::Decode {
            status: 0,
            message: format!("cannot encode the request body: {e}"),
        })
}

async fn error_of(resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    match resp.bytes().await {
        Ok(b) => Error::from_response(status, request_id, &b),
        Err(e) => Error::Transport(e),
    }
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(error_of(resp).await)
    }
}
