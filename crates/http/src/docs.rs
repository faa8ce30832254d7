//! Interactive API docs: Swagger UI at `/docs` and `/v1/swagger-editor` (the same page),
//! reading the document of `GET /v1/doc`.
//!
//! Everything is served from this binary: the files of the npm package `swagger-ui-dist`
//! are vendored in `crates/http/assets/swagger-ui/` (see the README there) and compiled in,
//! so the page works on machines without network access. Assets live under
//! `/docs/assets/{file}` and are cached for a year (`immutable`); the page links them with a
//! `?v=` of their content hash, so a new build is fetched at once.
//!
//! The page has no inline script (its init is `/docs/assets/init.js`), so its
//! Content-Security-Policy allows scripts from this origin only; requests made from the page
//! ("Try it out", the OAuth token exchange) may go to this origin, the public URL and the
//! OAuth issuer. Authorize takes a service token (`bearer`), or runs the OAuth authorization
//! code flow with PKCE (`oauth2`) for an app registered at `/apps` with the redirect URI
//! `<public URL>/docs/oauth2-redirect.html`.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

/// One vendored or own file served under `/docs/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file under `/docs/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: JS,
        body: include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: CSS,
        body: include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "oauth2-redirect.js",
        content_type: JS,
        body: include_bytes!("../assets/swagger-ui/oauth2-redirect.js"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        body: include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    },
    Asset {
        name: "LICENSE",
        content_type: TEXT,
        body: include_bytes!("../assets/swagger-ui/LICENSE"),
    },
    Asset {
        name: "NOTICE",
        content_type: TEXT,
        body: include_bytes!("../assets/swagger-ui/NOTICE"),
    },
    Asset {
        name: "swagger-ui-bundle.js.LICENSE.txt",
        content_type: TEXT,
        body: include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    },
    Asset {
        name: "init.js",
        content_type: JS,
        body: include_bytes!("../assets/docs/init.js"),
    },
    Asset {
        name: "docs.css",
        content_type: CSS,
        body: include_bytes!("../assets/docs/docs.css"),
    },
];

/// The docs routes (merged into the root router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/docs", get(docs_page))
        .route("/v1/swagger-editor", get(docs_page))
        .route("/docs/oauth2-redirect.html", get(oauth2_redirect_page))
        .route("/docs/assets/{file}", get(asset))
}

/// `GET /docs/assets/{file}`.
async fn asset(Path(file): Path<String>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return ApiError::route_not_found(&format!("/docs/assets/{file}")).into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        a.body,
    )
        .into_response()
}

/// `/docs/assets/<name>?v=<hash>`: the link to an asset, changing whenever its content does.
fn asset_url(name: &str) -> String {
    static HASHES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let hashes = HASHES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| (a.name, hex::encode(&Sha256::digest(a.body)[..6])))
            .collect()
    });
    let v = hashes
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| h.as_str())
        .unwrap_or_default();
    format!("/docs/assets/{name}?v={v}")
}

/// `GET /docs` and `GET /v1/swagger-editor`: the Swagger UI page.
async fn docs_page(State(state): State<AppState>) -> Response {
    let config = state.services.config();
    let public_url = state.base.as_str();
    let redirect = format!("{public_url}/docs/oauth2-redirect.html");
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgfleet API</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
<link rel="stylesheet" href="{docs_css}">
</head>
<body>
<header class="pgfleet-docs-note">
<strong>pgfleet Management API</strong> &middot; <a href="/v1/doc">OpenAPI document</a><br>
To try requests: <em>Authorize</em>, then paste a service token under <code>bearer</code>.
For <code>oauth2</code>, register an app at <a href="/apps">/apps</a> with the redirect URI
<code>{redirect}</code> and enter its client id.
</header>
<div id="swagger-ui" data-spec-url="/v1/doc"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"#,
        favicon = asset_url("favicon-32x32.png"),
        css = asset_url("swagger-ui.css"),
        docs_css = asset_url("docs.css"),
        bundle = asset_url("swagger-ui-bundle.js"),
        init = asset_url("init.js"),
        redirect = escape_html(&redirect),
    );
    let csp = page_csp(&[public_url, config.oauth.issuer.as_str()]);
    page_response(html, &csp)
}

/// `GET /docs/oauth2-redirect.html`: where the OAuth flow started by Swagger UI returns; its
/// script hands the code to the page that opened it.
async fn oauth2_redirect_page() -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>pgfleet API: \
         signing in</title></head>\n<body>\n<script src=\"{}\"></script>\n</body>\n</html>\n",
        asset_url("oauth2-redirect.js")
    );
    page_response(html, &page_csp(&[]))
}

/// The pages' policy: scripts and styles from this origin only (Swagger UI sets inline
/// `style` attributes, hence `'unsafe-inline'` for styles), requests to this origin and the
/// given URLs' origins.
fn page_csp(connect: &[&str]) -> String {
    let mut origins: Vec<String> = connect.iter().filter_map(|u| origin(u)).collect();
    origins.sort();
    origins.dedup();
    let mut connect_src = String::from("'self'");
    for o in origins {
        connect_src.push(' ');
        connect_src.push_str(&o);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src {connect_src}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// `scheme://host[:port]` of a URL, if it has one and it is safe in a header.
fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let o = u.origin();
    if !o.is_tuple() {
        return None;
    }
    let s = o.ascii_serialization();
    s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
        .then_some(s)
}

fn page_response(html: String, csp: &str) -> Response {
    let csp = HeaderValue::from_str(csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    (
        StatusCode::OK,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, csp),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        html,
    )
        .into_response()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_vendored_and_linked_by_hash() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            let url = asset_url(a.name);
            assert!(url.starts_with(&format!("/docs/assets/{}?v=", a.name)));
            assert_eq!(url.len(), format!("/docs/assets/{}?v=", a.name).len() + 12);
        }
    }

    #[test]
    fn csp_lists_only_origins() {
        let csp = page_csp(&["https://pg.example.com/base", "http://127.0.0.1:8080", "x"]);
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:8080 https://pg.example.com;"));
        assert!(csp.contains("script-src 'self';"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
