//! The absolute URLs of `/v1` resources: this server's public base ([`BaseUrl`]) and the
//! [`Located`] trait that fills every `url` field of a response before it is serialized.
//!
//! The domain answers with the wire types and leaves their `url` fields empty: where a
//! resource lives is an HTTP matter (the route table and the public address are here), so
//! the paths below are the only place a resource URL is written. Handlers pass what they
//! return through [`crate::AppState::located`].

use pgfleet_api_types::connection::{ApiKey, Connection, CreatedConnection, DatabaseRef};
use pgfleet_api_types::database::{CreatedDatabase, Database, ProjectRef};
use pgfleet_api_types::integration::Integration;
use pgfleet_api_types::project::{CreatedProject, Project, WorkspaceRef};
use pgfleet_api_types::{Data, List, Workspace};

/// The base of absolute URLs a client uses to reach this server (`public_url`), without a
/// trailing slash (e.g. `http://127.0.0.1:8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        let mut url: String = url.into();
        while url.ends_with('/') {
            url.pop();
        }
        Self(url)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether browsers reach this server over TLS (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.0.to_ascii_lowercase().starts_with("https://")
    }

    /// `{base}/v1/{collection}/{id}`.
    fn resource(&self, collection: &str, id: &str) -> String {
        format!("{}/v1/{collection}/{id}", self.0)
    }

    fn workspace(&self, id: &str) -> String {
        self.resource("workspaces", id)
    }

    fn project(&self, id: &str) -> String {
        self.resource("projects", id)
    }

    fn database(&self, id: &str) -> String {
        self.resource("databases", id)
    }

    fn connection(&self, id: &str) -> String {
        self.resource("connections", id)
    }

    fn integration(&self, id: &str) -> String {
        self.resource("integrations", id)
    }
}

/// A response (or part of one) whose `url` fields, its own and those of what it nests, are
/// filled from the resource ids.
pub trait Located {
    fn locate(&mut self, base: &BaseUrl);
}

impl Located for Workspace {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.workspace(&self.id);
    }
}

impl Located for WorkspaceRef {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.workspace(&self.id);
    }
}

impl Located for Project {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.project(&self.id);
        self.workspace.locate(base);
    }
}

impl Located for CreatedProject {
    fn locate(&mut self, base: &BaseUrl) {
        self.project.locate(base);
        self.database.locate(base);
    }
}

impl Located for ProjectRef {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.project(&self.id);
    }
}

impl Located for Database {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.database(&self.id);
        self.connections.locate(base);
        self.project.locate(base);
    }
}

impl Located for CreatedDatabase {
    fn locate(&mut self, base: &BaseUrl) {
        self.database.locate(base);
        self.api_keys.locate(base);
    }
}

impl Located for DatabaseRef {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.database(&self.id);
    }
}

impl Located for Connection {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.connection(&self.id);
        self.database.locate(base);
    }
}

impl Located for CreatedConnection {
    fn locate(&mut self, base: &BaseUrl) {
        self.connection.locate(base);
    }
}

/// A connection as the create of a database shows it: the URL is the connection's.
impl Located for ApiKey {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.connection(&self.id);
    }
}

impl Located for Integration {
    fn locate(&mut self, base: &BaseUrl) {
        self.url = base.integration(&self.id);
    }
}

impl<T: Located> Located for Option<T> {
    fn locate(&mut self, base: &BaseUrl) {
        if let Some(v) = self {
            v.locate(base);
        }
    }
}

impl<T: Located> Located for Vec<T> {
    fn locate(&mut self, base: &BaseUrl) {
        for v in self {
            v.locate(base);
        }
    }
}

impl<T: Located> Located for Data<T> {
    fn locate(&mut self, base: &BaseUrl) {
        self.data.locate(base);
    }
}

/// Lists carry no link of their own: the pagination block is a cursor.
impl<T: Located> Located for List<T> {
    fn locate(&mut self, base: &BaseUrl) {
        self.data.locate(base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_api_types::connection::Endpoints;
    use pgfleet_api_types::database::DatabaseStatus;

    fn connection(id: &str, db: &str) -> Connection {
        Connection {
            id: id.into(),
            kind: "connection".into(),
            url: String::new(),
            name: "c".into(),
            created_at: String::new(),
            connection_kind: "postgres".into(),
            endpoints: Endpoints::default(),
            direct_connection: None,
            database: DatabaseRef {
                id: db.into(),
                url: String::new(),
                name: "d".into(),
            },
        }
    }

    fn database() -> Database {
        Database {
            id: "db_1".into(),
            kind: "database".into(),
            url: String::new(),
            name: "d".into(),
            status: DatabaseStatus::Ready,
            created_at: String::new(),
            is_default: true,
            default_connection_id: None,
            connections: vec![connection("con_1", "db_1")],
            project: Some(ProjectRef {
                id: "proj_1".into(),
                url: String::new(),
                name: "p".into(),
            }),
            region: None,
            source: None,
            branch_id: None,
            logical_id: None,
            restore_window: None,
        }
    }

    #[test]
    fn the_base_loses_its_trailing_slashes() {
        let base = BaseUrl::new("https://pg.example.com//");
        assert_eq!(base.as_str(), "https://pg.example.com");
        assert!(base.is_https());
        assert!(!BaseUrl::new("http://127.0.0.1:8080").is_https());
    }

    #[test]
    fn every_nested_url_is_filled() {
        let base = BaseUrl::new("http://h:1/");
        let mut created = CreatedDatabase {
            database: database(),
            api_keys: vec![ApiKey::from(connection("con_1", "db_1"))],
            connection_string: None,
            direct_connection: None,
        };
        created.locate(&base);
        let db = &created.database;
        assert_eq!(db.url, "http://h:1/v1/databases/db_1");
        assert_eq!(db.connections[0].url, "http://h:1/v1/connections/con_1");
        assert_eq!(
            db.connections[0].database.url,
            "http://h:1/v1/databases/db_1"
        );
        assert_eq!(
            db.project.as_ref().map(|p| p.url.as_str()),
            Some("http://h:1/v1/projects/proj_1")
        );
        assert_eq!(created.api_keys[0].url, "http://h:1/v1/connections/con_1");

        let mut ws = List {
            data: vec![Workspace {
                id: "ws_1".into(),
                kind: "workspace".into(),
                url: String::new(),
                name: "w".into(),
                created_at: String::new(),
            }],
            pagination: pgfleet_api_types::Pagination {
                next_cursor: None,
                has_more: false,
            },
        };
        ws.locate(&base);
        assert_eq!(ws.data[0].url, "http://h:1/v1/workspaces/ws_1");
    }
}
