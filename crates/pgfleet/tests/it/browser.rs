//! A browser without JavaScript for the page tests (`pages.rs`, `console.rs`): real HTTP,
//! redirects not followed, cookies kept by name (paths ignored), and the few ways a test
//! reads a page (inputs, `data-testid` text, ids in links, security headers).

use std::collections::HashMap;

use reqwest::StatusCode;

use crate::harness::TestServer;

pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub jar: HashMap<String, String>,
}

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// Where a redirect points (panics when the page is not one).
    #[track_caller]
    pub fn redirect_to(&self) -> &str {
        self.location()
            .unwrap_or_else(|| panic!("no location: {} {}", self.status, self.body))
    }

    /// The `Set-Cookie` header for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::from)
    }

    /// The value of the first `<input name=… value=…>` named `name`.
    #[track_caller]
    pub fn input(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.body))
            + needle.len();
        let end = self.body[start..].find('"').unwrap() + start;
        unescape(&self.body[start..end])
    }

    /// The text of the element with `data-testid="id"`.
    pub fn testid(&self, id: &str) -> Option<String> {
        let needle = format!("data-testid=\"{id}\">");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('<')? + start;
        Some(unescape(self.body[start..end].trim()))
    }

    /// The first path segment after `prefix` in the body (an ID in a link or form action).
    #[track_caller]
    pub fn id_after(&self, prefix: &str) -> String {
        let start = self
            .body
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} in:\n{}", self.body))
            + prefix.len();
        let end = self.body[start..].find(['/', '"']).unwrap() + start;
        self.body[start..end].to_string()
    }

    #[track_caller]
    pub fn assert_security_headers(&self) {
        let h = |n: &str| {
            self.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(h("referrer-policy"), "no-referrer");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-store");
        assert!(h("content-security-policy").starts_with("default-src 'none';"));
    }
}

pub fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// `s` form-urlencoded.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Browser {
    pub fn new(s: &TestServer) -> Self {
        Self::at(&s.base, None)
    }

    /// A browser at another loopback address (`127.0.0.2`…): sign-in throttling counts
    /// failures per client address.
    pub fn from_addr(s: &TestServer, local: std::net::IpAddr) -> Self {
        Self::at(&s.base, Some(local))
    }

    /// A browser of the server at `base`, from `local` when given.
    pub fn at(base: &str, local: Option<std::net::IpAddr>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .unwrap(),
            base: base.to_string(),
            jar: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.jar.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        for c in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        let body = r.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    pub async fn post_owned(&mut self, path: &str, form: &[(String, String)]) -> Page {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(path, &pairs).await
    }

    /// Opens /login (for its CSRF cookie and field) and signs in; the sign-in's response.
    pub async fn sign_in(&mut self, email: &str, password: &str, next: &str) -> Page {
        let page = self.get(&format!("/login?next={}", enc(next))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.input("csrf_token");
        let next = page.input("next");
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    pub fn signed_in(&self) -> bool {
        self.jar.contains_key("pgfleet_session")
    }
}

/// The bootstrap admin's password and workspace id.
pub fn bootstrap(s: &TestServer) -> (String, String) {
    let b = s.running.as_ref().unwrap().bootstrap.as_ref().unwrap();
    (b.admin_password.clone(), b.workspace_id.clone())
}

/// A browser signed in to the console as the bootstrap admin, and the admin's workspace id.
pub async fn admin_browser(s: &TestServer) -> (Browser, String) {
    let (password, ws) = bootstrap(s);
    let mut b = Browser::new(s);
    let r = b
        .sign_in(pgfleet::config::DEFAULT_ADMIN_EMAIL, &password, "/console")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    (b, ws)
}
