//! The console's forms as typed values, read by [`super::Posted`] (which checks the CSRF
//! token every form carries besides these fields). An absent field reads as empty, so a
//! refusal says what is missing, as the domain words it.

use serde::{Deserialize, Deserializer};

/// A form with no field of its own (a button).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Empty {}

/// A form with one `name` (rename a project, a new connection or service token).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Named {
    pub(super) name: String,
}

/// A new service token: its name, the project it is limited to (empty: the whole
/// workspace) and its read-only box (`yes` when ticked).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewToken {
    pub(super) name: String,
    pub(super) project: String,
    pub(super) read_only: String,
}

/// A new webhook endpoint: its `url`, and `events` comma-separated (empty: every type).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewWebhook {
    pub(super) url: String,
    pub(super) events: String,
}

/// A destructive form: its `confirm` field, a ticked box (`yes`) or a typed name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Confirmed {
    pub(super) confirm: String,
}

/// A new project: its name and region (the first available one when empty).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewProject {
    pub(super) name: String,
    pub(super) region: String,
}

/// A project's transfer: a live access token of the receiving workspace.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Transfer {
    pub(super) recipient_token: String,
}

/// Where a new database's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Empty,
    Backup,
    Clone,
}

/// A new database: `source` (`empty`, the default; `backup` with `backup` =
/// `{database}/{backup}`; `clone` with `clone_of`) and an optional name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewDatabase {
    /// `None`: a source this form does not offer (a 400 page).
    #[serde(default = "empty_source", deserialize_with = "source")]
    pub(super) source: Option<Source>,
    pub(super) clone_of: String,
    pub(super) backup: String,
    pub(super) name: String,
}

fn empty_source() -> Option<Source> {
    Some(Source::Empty)
}

fn source<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Source>, D::Error> {
    Ok(match String::deserialize(d)?.as_str() {
        "" | "empty" => Some(Source::Empty),
        "backup" => Some(Source::Backup),
        "clone" => Some(Source::Clone),
        _ => None,
    })
}

/// A restore: the backup, and the database's name typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Restore {
    pub(super) backup_id: String,
    pub(super) confirm: String,
}

/// A point-in-time restore in place: the time (`datetime-local`, UTC) and the database's
/// name typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RestoreToTime {
    pub(super) at: String,
    pub(super) confirm: String,
}

impl RestoreToTime {
    /// `at` as RFC 3339 (UTC); `None` when it is not a `datetime-local` value.
    pub(super) fn target(&self) -> Option<String> {
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(&self.at, f).ok())
            .map(|t| {
                t.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
    }
}

/// A member added by e-mail address, with a role (`member` or `admin`, checked by the domain).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewMember {
    pub(super) email: String,
    pub(super) role: String,
}

/// A new user who joins the workspace: e-mail address, optional password (one is generated
/// and shown once when empty), role.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NewUser {
    pub(super) email: String,
    pub(super) password: String,
    pub(super) role: String,
}

/// A server administrator's flag: `admin` = `true` or `false` (`None`: anything else, a
/// refusal on the page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ServerAdmin {
    #[serde(deserialize_with = "flag")]
    pub(super) admin: Option<bool>,
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match String::deserialize(d)?.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    })
}

/// An OAuth app's client type as its forms send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ClientType {
    Public,
    Confidential,
}

/// An OAuth app's create and edit forms (the edit form sends no client type).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AppFields {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) redirect_uris: String,
    /// `None` when absent or neither `public` nor `confidential` (the page says so).
    #[serde(deserialize_with = "client_type")]
    pub(super) client_type: Option<ClientType>,
}

/// A client type, or `None` for anything else (refused with the form's own message).
fn client_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClientType>, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(match raw.as_str() {
        "public" => Some(ClientType::Public),
        "confidential" => Some(ClientType::Confidential),
        _ => None,
    })
}

/// The workspace a form posted to the older `/apps` address named (its other fields are
/// sent again to the console by the browser, which repeats the body on a `307`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WorkspaceField {
    pub(super) workspace_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A form body read as axum's `Form` reads it: every value a string.
    fn read<T: serde::de::DeserializeOwned>(body: &str) -> Option<T> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).ok()
    }

    #[test]
    fn absent_fields_read_as_empty_and_sources_are_typed() {
        let db: NewDatabase = read("source=clone&clone_of=db_1").unwrap_or_default();
        assert_eq!(db.source, Some(Source::Clone));
        assert_eq!(db.clone_of, "db_1");
        assert!(db.name.is_empty());
        let db: NewDatabase = read("name=x").unwrap_or_default();
        assert_eq!(db.source, Some(Source::Empty));
        let db: NewDatabase = read("source=tape").unwrap_or_default();
        assert_eq!(db.source, None);
        let a: ServerAdmin = read("admin=false").unwrap_or_default();
        assert_eq!(a.admin, Some(false));
        let a: ServerAdmin = read("admin=maybe").unwrap_or_default();
        assert_eq!(a.admin, None);
    }

    #[test]
    fn an_apps_client_type_is_typed_and_anything_else_is_none() {
        let f: AppFields = read("name=a&client_type=confidential").unwrap_or_default();
        assert_eq!(f.client_type, Some(ClientType::Confidential));
        assert_eq!(f.name, "a");
        let f: AppFields = read("client_type=public&redirect_uris=x").unwrap_or_default();
        assert_eq!(f.client_type, Some(ClientType::Public));
        assert_eq!(f.redirect_uris, "x");
        let f: AppFields = read("client_type=weird").unwrap_or_default();
        assert_eq!(f.client_type, None);
        let f: AppFields = read("name=edit").unwrap_or_default();
        assert_eq!(f.client_type, None, "the edit form sends none");
        let w: WorkspaceField = read("workspace_id=wksp_1&name=x").unwrap_or_default();
        assert_eq!(w.workspace_id, "wksp_1");
    }
}
