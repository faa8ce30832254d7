//! Errors of the executor and how they are answered: Prisma's user-facing errors (database
//! error kinds → P-codes with `meta`, validation rules, data mapping), transaction-manager
//! errors (P2028, HTTP 409), internal errors (HTTP 500 like the reference), and pgfleet's own
//! (unsupported plan, bad API key, limits) — status and body as
//! `@prisma/query-plan-executor` 7.10.0 answers them (`getErrorResponse`).

use axum::http::StatusCode;
use serde_json::{json, Map, Value as Json};

/// A database error as adapter-pg reports it: the `cause` object of a `DriverAdapterError`.
#[derive(Debug, Clone)]
pub struct DriverError {
    pub cause: Json,
}

impl DriverError {
    pub fn new(cause: Json) -> Self {
        Self { cause }
    }

    fn field(&self, key: &str) -> Option<&Json> {
        self.cause.get(key)
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(Json::as_str)
    }

    pub fn kind(&self) -> &str {
        self.str_field("kind").unwrap_or("postgres")
    }

    fn code(&self) -> Option<&'static str> {
        Some(match self.kind() {
            "AuthenticationFailed" => "P1000",
            "DatabaseNotReachable" => "P1001",
            "DatabaseDoesNotExist" => "P1003",
            "SocketTimeout" => "P1008",
            "DatabaseAlreadyExists" => "P1009",
            "DatabaseAccessDenied" => "P1010",
            "TlsConnectionError" => "P1011",
            "ConnectionClosed" => "P1017",
            "TransactionAlreadyClosed" => "P1018",
            "LengthMismatch" => "P2000",
            "UniqueConstraintViolation" => "P2002",
            "ForeignKeyConstraintViolation" | "RestrictViolation" => "P2003",
            "InvalidInputValue" => "P2007",
            "UnsupportedNativeDataType" => "P2010",
            "NullConstraintViolation" => "P2011",
            "ValueOutOfRange" => "P2020",
            "TableDoesNotExist" => "P2021",
            "ColumnNotFound" => "P2022",
            "InvalidIsolationLevel" | "InconsistentColumnData" => "P2023",
            "TransactionWriteConflict" => "P2034",
            "TooManyConnections" => "P2037",
            _ => return None,
        })
    }

    fn constraint_text(&self) -> String {
        match self.field("constraint") {
            Some(Json::Object(c)) if c.contains_key("fields") => {
                let fields: Vec<String> = c["fields"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|f| format!("`{}`", f.as_str().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("fields: ({})", fields.join(", "))
            }
            Some(Json::Object(c)) if c.contains_key("index") => {
                format!("constraint: `{}`", c["index"].as_str().unwrap_or_default())
            }
            Some(Json::Object(c)) if c.contains_key("foreignKey") => "foreign key".into(),
            _ => "(not available)".into(),
        }
    }

    /// `renderErrorMessage` of the runtime.
    fn message(&self) -> Option<String> {
        let na = |k: &str| self.str_field(k).unwrap_or("(not available)").to_owned();
        Some(match self.kind() {
            "AuthenticationFailed" => format!(
                "Authentication failed against the database server, the provided database credentials for `{}` are not valid",
                na("user")
            ),
            "DatabaseNotReachable" => "Can't reach database server".into(),
            "DatabaseDoesNotExist" => format!("Database `{}` does not exist on the database server", na("db")),
            "SocketTimeout" => "Operation has timed out".into(),
            "DatabaseAlreadyExists" => format!("Database `{}` already exists on the database server", na("db")),
            "DatabaseAccessDenied" => format!("User was denied access on the database `{}`", na("db")),
            "ConnectionClosed" => "Server has closed the connection.".into(),
            "LengthMismatch" => format!(
                "The provided value for the column is too long for the column's type. Column: {}",
                na("column")
            ),
            "UniqueConstraintViolation" => format!("Unique constraint failed on the {}", self.constraint_text()),
            "ForeignKeyConstraintViolation" | "RestrictViolation" => {
                format!("Foreign key constraint violated on the {}", self.constraint_text())
            }
            "UnsupportedNativeDataType" => format!(
                "Failed to deserialize column of type '{}'. If you're using $queryRaw and this column is explicitly marked as `Unsupported` in your Prisma schema, try casting this column to any supported Prisma type such as `String`.",
                self.str_field("type").unwrap_or("Unknown")
            ),
            "NullConstraintViolation" => format!("Null constraint violation on the {}", self.constraint_text()),
            "ValueOutOfRange" => format!("Value out of range for the type: {}", na("cause")),
            "TableDoesNotExist" => format!("The table `{}` does not exist in the current database.", na("table")),
            "ColumnNotFound" => format!("The column `{}` does not exist in the current database.", na("column")),
            "TransactionWriteConflict" => {
                "Transaction failed due to a write conflict or a deadlock. Please retry your transaction".into()
            }
            "TooManyConnections" => format!("Too many database connections opened: {}", na("cause")),
            "InvalidInputValue" => format!("Invalid input value: {}", na("message")),
            _ => return None,
        })
    }

    fn meta(&self) -> Map<String, Json> {
        let mut meta = Map::new();
        meta.insert(
            "driverAdapterError".into(),
            json!({"name": "DriverAdapterError", "cause": self.cause}),
        );
        meta
    }

    fn original(&self) -> (String, String) {
        let code = self.str_field("originalCode").unwrap_or("N/A").to_owned();
        let message = self
            .str_field("originalMessage")
            .map(String::from)
            .or_else(|| self.message())
            .unwrap_or_else(|| self.kind().to_owned());
        (code, message)
    }

    /// `rethrowAsUserFacing`: a mapped kind, or P2039 for other database errors.
    pub fn into_user_facing(self) -> ExecError {
        if let (Some(code), Some(message)) = (self.code(), self.message()) {
            let mut meta = self.meta();
            if self.kind() == "UniqueConstraintViolation" {
                if let Some(table) = self.field("table") {
                    meta.insert("table".into(), table.clone());
                }
            }
            return ExecError::UserFacing {
                code: code.into(),
                message,
                meta,
            };
        }
        let (code, message) = self.original();
        ExecError::UserFacing {
            code: "P2039".into(),
            message: format!("Database error. Code: `{code}`. Message: `{message}`"),
            meta: self.meta(),
        }
    }

    /// `rethrowAsUserFacingRawError`: every error of a raw query is P2010.
    pub fn into_raw_user_facing(self) -> ExecError {
        let (code, message) = self.original();
        ExecError::UserFacing {
            code: "P2010".into(),
            message: format!("Raw query failed. Code: `{code}`. Message: `{message}`"),
            meta: self.meta(),
        }
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A Prisma user-facing error (HTTP 400).
    #[error("{message}")]
    UserFacing {
        code: String,
        message: String,
        meta: Map<String, Json>,
    },
    /// A database error not yet mapped (mapped at the node that ran the statement).
    #[error("database error")]
    Driver(DriverError),
    /// An interactive-transaction error (P2028, HTTP 409); `message` without the prefix.
    #[error("Transaction API error: {message}")]
    Transaction {
        message: String,
        meta: Map<String, Json>,
    },
    /// A plan this executor does not implement (never answered with a guess).
    #[error("pgfleet cannot execute this query plan: {0}")]
    Unsupported(String),
    /// Errors the reference raises as plain JavaScript errors (HTTP 500).
    #[error("{0}")]
    Internal(String),
    /// A missing, unknown or revoked API key.
    #[error("invalid API key")]
    Unauthorized,
    /// A malformed request (HTTP 400, text body).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over the size limit (HTTP 413).
    #[error("The request body is larger than the limit of {0} bytes.")]
    TooLarge(usize),
    /// The API key has its limit of concurrent queries running (HTTP 429).
    #[error("Too many concurrent queries for this API key (the limit is {0}); retry later.")]
    TooManyRequests(usize),
    /// The query ran past its time limit (HTTP 422, as the reference).
    #[error("Query timeout exceeded")]
    QueryTimeout,
}

impl ExecError {
    pub fn user(code: &str, message: impl Into<String>, meta: Map<String, Json>) -> Self {
        ExecError::UserFacing {
            code: code.into(),
            message: message.into(),
            meta,
        }
    }

    pub fn tx(message: impl Into<String>) -> Self {
        ExecError::Transaction {
            message: message.into(),
            meta: Map::new(),
        }
    }

    /// Maps a still-unmapped database error as a query node of a model operation would.
    pub fn user_facing(self) -> Self {
        match self {
            ExecError::Driver(d) => d.into_user_facing(),
            other => other,
        }
    }

    /// HTTP status and body (`None` body = the text of the error).
    pub fn response(self) -> (StatusCode, Result<Json, String>) {
        match self.user_facing() {
            ExecError::UserFacing {
                code,
                message,
                meta,
            } => (
                StatusCode::BAD_REQUEST,
                Ok(json!({"code": code, "error": message, "meta": meta})),
            ),
            e @ ExecError::Transaction { .. } => {
                let text = e.to_string();
                let meta = match e {
                    ExecError::Transaction { meta, .. } => meta,
                    _ => Map::new(),
                };
                (
                    StatusCode::CONFLICT,
                    Ok(json!({"code": "P2028", "error": text, "meta": meta})),
                )
            }
            e @ ExecError::Unsupported(_) => (
                StatusCode::BAD_REQUEST,
                Ok(json!({"code": "P6006", "error": e.to_string()})),
            ),
            ExecError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Ok(
                    json!({"code": "P6002", "error": "The provided API key is invalid or has been revoked."}),
                ),
            ),
            ExecError::BadRequest(text) => (StatusCode::BAD_REQUEST, Err(text)),
            e @ ExecError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                Ok(json!({"code": "P5011", "error": e.to_string()})),
            ),
            e @ ExecError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Ok(json!({"code": "P6005", "error": e.to_string()})),
            ),
            ExecError::QueryTimeout => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Ok(json!({"error": "Query timeout exceeded"})),
            ),
            ExecError::Internal(msg) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Ok(json!({"error": msg})))
            }
            ExecError::Driver(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Ok(json!({"error": "database error"})),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violation_maps_to_p2002_with_table() {
        let d = DriverError::new(json!({
            "originalCode": "23505",
            "originalMessage": "duplicate key value violates unique constraint \"User_email_key\"",
            "kind": "UniqueConstraintViolation",
            "constraint": {"index": "User_email_key"},
            "table": "User"
        }));
        let (status, body) = ExecError::Driver(d.clone()).response();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body = body.unwrap_or_default();
        assert_eq!(body["code"], "P2002");
        assert_eq!(
            body["error"],
            "Unique constraint failed on the constraint: `User_email_key`"
        );
        assert_eq!(body["meta"]["table"], "User");
        assert_eq!(
            body["meta"]["driverAdapterError"]["cause"]["kind"],
            "UniqueConstraintViolation"
        );
        match d.into_raw_user_facing() {
            ExecError::UserFacing { code, message, .. } => {
                assert_eq!(code, "P2010");
                assert!(message.starts_with("Raw query failed. Code: `23505`."));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unmapped_database_error_is_p2039() {
        let d = DriverError::new(json!({
            "originalCode": "42601", "originalMessage": "syntax error", "kind": "postgres"
        }));
        match d.into_user_facing() {
            ExecError::UserFacing { code, message, .. } => {
                assert_eq!(code, "P2039");
                assert_eq!(
                    message,
                    "Database error. Code: `42601`. Message: `syntax error`"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transaction_errors_are_409_p2028() {
        let (status, body) = ExecError::tx("maxWait is required").response();
        assert_eq!(status, StatusCode::CONFLICT);
        let body = body.unwrap_or_default();
        assert_eq!(body["error"], "Transaction API error: maxWait is required");
        assert_eq!(body["code"], "P2028");
    }
}
