//! OAuth app management: `GET/POST /apps` (list of the apps of every workspace of the user,
//! and the create form), `GET/POST /apps/{id}` (an app: details, edit), and
//! `POST /apps/{id}/delete`.
//!
//! A created app's secret is shown once, on the page the create redirects to: it travels
//! there in the `pgfleet_flash` cookie, sealed with a key derived from the session cookie
//! (the pages' one seal, [`super::cookies`]), and the cookie is cleared as the page is shown.
//! The secret itself is never stored. The forms are typed ([`AppFields`], shared with the
//! console's apps pages).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pgfleet_storage::oauth::ClientRow;
use serde::{Deserialize, Serialize};

use super::cookies::{open, seal, FlashPurpose};
use super::{
    fail, form_typed, read_cookie, render, require_session, see_other, set_cookie, show_time,
    Chrome, Notice, PageError, SameSite, Signed, FLASH_COOKIE,
};
use crate::AppState;

/// How long the sealed secret waits for its page, in seconds.
const FLASH_MAX_AGE: i64 = 300;

/// An app as the pages (here and in the console) show it.
pub(super) struct AppView {
    pub(super) id: String,
    pub(super) workspace_id: String,
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) client_type: String,
    pub(super) redirect_uris: Vec<String>,
    pub(super) created: String,
    /// RFC 3339, for the console's relative time.
    pub(super) created_at: String,
}

impl From<ClientRow> for AppView {
    fn from(c: ClientRow) -> Self {
        Self {
            created: show_time(&c.created_at),
            created_at: pgfleet_api_types::ts(&c.created_at),
            id: c.id,
            workspace_id: c.workspace_id,
            name: c.name,
            description: c.description,
            client_type: c.client_type,
            redirect_uris: c.redirect_uris,
        }
    }
}

struct WorkspaceApps {
    id: String,
    name: String,
    apps: Vec<AppView>,
}

struct WorkspaceOption {
    id: String,
    name: String,
    selected: bool,
}

/// What a create or edit form held (re-shown after an error), here and in the console
/// (which has no workspace field: the page's workspace is the app's).
#[derive(Default)]
pub(super) struct AppForm {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) redirect_uris: String,
    pub(super) confidential: bool,
    pub(super) workspace_id: String,
}

impl AppForm {
    /// The edit form of an existing app.
    pub(super) fn of(client: &ClientRow) -> Self {
        Self {
            name: client.name.clone(),
            description: client.description.clone().unwrap_or_default(),
            redirect_uris: client.redirect_uris.join("\n"),
            confidential: client.client_type == "confidential",
            workspace_id: client.workspace_id.clone(),
        }
    }

    pub(super) fn from_fields(f: &AppFields) -> Self {
        Self {
            name: f.name.clone(),
            description: f.description.clone(),
            redirect_uris: f.redirect_uris.clone(),
            confidential: f.client_type == Some(ClientType::Confidential),
            workspace_id: f.workspace_id.clone(),
        }
    }

    pub(super) fn uris(&self) -> Vec<String> {
        self.redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    pub(super) fn description(&self) -> Option<&str> {
        Some(self.description.trim()).filter(|d| !d.is_empty())
    }
}

/// An app's client type as its forms send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ClientType {
    Public,
    Confidential,
}

/// The create and edit forms as posted (here and in the console; an absent field is empty).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AppFields {
    pub(super) csrf_token: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) redirect_uris: String,
    /// `None` when absent or neither `public` nor `confidential` (the page says so).
    #[serde(deserialize_with = "client_type")]
    pub(super) client_type: Option<ClientType>,
    pub(super) workspace_id: String,
}

/// A client type, or `None` for anything else (refused with the form's own message).
fn client_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ClientType>, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(match raw.as_str() {
        "public" => Some(ClientType::Public),
        "confidential" => Some(ClientType::Confidential),
        _ => None,
    })
}

/// The delete form: its CSRF token alone.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CsrfOnly {
    pub(super) csrf_token: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsTemplate {
    chrome: Chrome,
    issuer: String,
    sections: Vec<WorkspaceApps>,
    workspaces: Vec<WorkspaceOption>,
    form: AppForm,
    error: Option<Notice>,
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppTemplate {
    chrome: Chrome,
    issuer: String,
    app: AppView,
    workspace_name: String,
    created: bool,
    secret: Option<String>,
    form: AppForm,
    error: Option<Notice>,
}

/// The secret of a just-created app, on its way to the page that shows it.
#[derive(Serialize, Deserialize)]
struct Flash {
    client_id: String,
    secret: Option<String>,
}

/// The list page, with the create form holding `form` and `error` above it.
async fn apps_view(
    state: &AppState,
    signed: &Signed,
    form: AppForm,
    error: Option<Notice>,
) -> Result<AppsTemplate, Response> {
    let workspaces = state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
        .map_err(fail)?;
    let mut sections = Vec::with_capacity(workspaces.len());
    for w in &workspaces {
        let apps = state
            .services
            .oauth()
            .clients_list(&w.id)
            .await
            .map_err(fail)?;
        sections.push(WorkspaceApps {
            id: w.id.clone(),
            name: w.name.clone(),
            apps: apps.into_iter().map(AppView::from).collect(),
        });
    }
    let options = workspaces
        .into_iter()
        .map(|w| WorkspaceOption {
            selected: w.id == form.workspace_id,
            id: w.id,
            name: w.name,
        })
        .collect();
    Ok(AppsTemplate {
        chrome: signed.chrome(),
        issuer: state.services.config().oauth.issuer.clone(),
        sections,
        workspaces: options,
        form,
        error,
    })
}

/// `GET /apps`
pub(crate) async fn apps_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match require_session(&state, &headers, "/apps").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    match apps_view(&state, &signed, AppForm::default(), None).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(res) => res,
    }
}

/// The list page again, with the create form as sent and why it was refused.
async fn refuse(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Notice,
    form: AppForm,
) -> Response {
    match apps_view(state, signed, form, Some(notice)).await {
        Ok(page) => render(status, &page),
        Err(res) => res,
    }
}

/// `POST /apps`: creates an app, then 303 to its page (which shows a secret once).
pub(crate) async fn apps_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<AppFields>, FormRejection>,
) -> Response {
    let signed = match require_session(&state, &headers, "/apps").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let f = match form_typed(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = signed.check_csrf(&f.csrf_token) {
        return e.into_response();
    }
    let form = AppForm::from_fields(&f);
    if f.client_type.is_none() {
        let notice = Notice {
            message: "Choose the client type: public or confidential.".to_string(),
            hint: None,
            retry_after_secs: None,
        };
        return refuse(&state, &signed, StatusCode::BAD_REQUEST, notice, form).await;
    }
    match state
        .services
        .sessions()
        .user_is_member(signed.user_id(), &form.workspace_id)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return PageError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "You are not a member of that workspace.",
                Some("Choose one of your workspaces.".to_string()),
            )
            .into_response()
        }
        Err(e) => return fail(e),
    }
    let created = state
        .services
        .oauth()
        .client_create(
            &form.workspace_id,
            Some(signed.user_id()),
            &form.name,
            form.description(),
            &form.uris(),
            form.confidential,
        )
        .await;
    match created {
        Ok(c) => {
            let flash = Flash {
                client_id: c.client.id.clone(),
                secret: c.client_secret,
            };
            let mut res = see_other(&format!("/apps/{}", c.client.id));
            match seal(&state, FlashPurpose::Apps, &signed.token, &flash) {
                Some(v) => set_cookie(
                    &mut res,
                    &state,
                    FLASH_COOKIE,
                    &v,
                    "/apps",
                    SameSite::Strict,
                    Some(FLASH_MAX_AGE),
                ),
                None => tracing::error!("could not seal a new app's secret"),
            }
            res
        }
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            refuse(&state, &signed, status, notice, form).await
        }
    }
}

/// The page of one app, with the edit form holding `form`.
async fn app_view(
    state: &AppState,
    signed: &Signed,
    client: ClientRow,
    form: Option<AppForm>,
    error: Option<Notice>,
) -> Result<AppTemplate, Response> {
    let workspace_name = state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
        .map_err(fail)?
        .into_iter()
        .find(|w| w.id == client.workspace_id)
        .map(|w| w.name)
        .unwrap_or_default();
    let form = form.unwrap_or_else(|| AppForm::of(&client));
    Ok(AppTemplate {
        chrome: signed.chrome(),
        issuer: state.services.config().oauth.issuer.clone(),
        app: AppView::from(client),
        workspace_name,
        created: false,
        secret: None,
        form,
        error,
    })
}

/// `GET /apps/{id}`
pub(crate) async fn app_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed = match require_session(
        &state,
        &headers,
        &format!("/apps/{}", super::urlencode(&id)),
    )
    .await
    {
        Ok(s) => s,
        Err(res) => return res,
    };
    let client = match state
        .services
        .sessions()
        .user_oauth_client(signed.user_id(), &id)
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut page = match app_view(&state, &signed, client, None, None).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let sealed = read_cookie(&headers, FLASH_COOKIE);
    if let Some(flash) = sealed
        .as_deref()
        .and_then(|s| open::<Flash>(FlashPurpose::Apps, &signed.token, s))
    {
        if flash.client_id == page.app.id {
            page.created = true;
            page.secret = flash.secret;
        }
    }
    let mut res = render(StatusCode::OK, &page);
    if sealed.is_some() {
        set_cookie(
            &mut res,
            &state,
            FLASH_COOKIE,
            "",
            "/apps",
            SameSite::Strict,
            Some(0),
        );
    }
    res
}

/// `POST /apps/{id}`: name, description, redirect URIs.
pub(crate) async fn app_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<AppFields>, FormRejection>,
) -> Response {
    let signed = match require_session(&state, &headers, "/apps").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let f = match form_typed(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = signed.check_csrf(&f.csrf_token) {
        return e.into_response();
    }
    let client = match state
        .services
        .sessions()
        .user_oauth_client(signed.user_id(), &id)
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let form = AppForm::from_fields(&f);
    let updated = state
        .services
        .oauth()
        .client_update(
            &client.workspace_id,
            &client.id,
            &form.name,
            form.description(),
            &form.uris(),
        )
        .await;
    match updated {
        Ok(c) => see_other(&format!("/apps/{}", c.id)),
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            match app_view(&state, &signed, client, Some(form), Some(notice)).await {
                Ok(page) => render(status, &page),
                Err(res) => res,
            }
        }
    }
}

/// `POST /apps/{id}/delete`: deletes the app and everything issued to it.
pub(crate) async fn app_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let signed = match require_session(&state, &headers, "/apps").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let f = match form_typed(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = signed.check_csrf(&f.csrf_token) {
        return e.into_response();
    }
    let client = match state
        .services
        .sessions()
        .user_oauth_client(signed.user_id(), &id)
        .await
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match state
        .services
        .oauth()
        .client_delete(&client.workspace_id, &client.id)
        .await
    {
        Ok(()) => see_other("/apps"),
        Err(e) => fail(e),
    }
}
