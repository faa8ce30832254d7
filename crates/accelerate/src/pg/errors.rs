//! Server errors as adapter-pg reports them (`convertDriverError` / `mapDriverError`): the
//! SQLSTATE picks an error kind, with the constraint, table, column or database name taken
//! from the error fields or parsed from the message as the adapter does.

use serde_json::{json, Map, Value as Json};

use crate::error::{DriverError, ExecError};

/// `convertDriverError` + `mapDriverError` of adapter-pg.
pub fn driver_error(err: &tokio_postgres::Error) -> ExecError {
    let Some(db) = err.as_db_error() else {
        if err.is_closed() {
            return ExecError::Driver(DriverError::new(json!({"kind": "ConnectionClosed"})));
        }
        return ExecError::Internal(format!("database connection error: {err}"));
    };
    let code = db.code().code();
    let message = db.message();
    let mut cause = Map::new();
    cause.insert("originalCode".into(), Json::from(code));
    cause.insert("originalMessage".into(), Json::from(message));
    let key_fields = db
        .detail()
        .and_then(|d| {
            d.strip_prefix("Key (")
                .or_else(|| d.find("Key (").map(|i| &d[i + 5..]))
        })
        .and_then(|rest| rest.split_once(')'))
        .map(|(fields, _)| fields.split(", ").map(Json::from).collect::<Vec<_>>());
    let quoted = |n: usize| {
        message
            .split(' ')
            .nth(n)
            .and_then(|w| w.split('"').nth(1))
            .map(Json::from)
    };
    let mut put = |k: &str, v: Option<Json>| {
        if let Some(v) = v {
            cause.insert(k.into(), v);
        }
    };
    match code {
        "22001" => {
            put("kind", Some("LengthMismatch".into()));
            put("column", db.column().map(Json::from));
        }
        "22003" => {
            put("kind", Some("ValueOutOfRange".into()));
            put("cause", Some(message.into()));
        }
        "22P02" => {
            put("kind", Some("InvalidInputValue".into()));
            put("message", Some(message.into()));
        }
        "23505" => {
            put("kind", Some("UniqueConstraintViolation".into()));
            let constraint = match (db.constraint(), &key_fields) {
                (Some(c), _) => Some(json!({ "index": c })),
                (None, Some(f)) => Some(json!({ "fields": f })),
                _ => None,
            };
            put("constraint", constraint);
            put("table", db.table().map(Json::from));
        }
        "23502" => {
            put("kind", Some("NullConstraintViolation".into()));
            put("constraint", key_fields.map(|f| json!({ "fields": f })));
        }
        "23503" | "23001" => {
            let kind = if code == "23503" {
                "ForeignKeyConstraintViolation"
            } else {
                "RestrictViolation"
            };
            put("kind", Some(kind.into()));
            let constraint = match (db.column(), db.constraint()) {
                (Some(col), _) => Some(json!({ "fields": [col] })),
                (None, Some(c)) => Some(json!({ "index": c })),
                _ => None,
            };
            put("constraint", constraint);
        }
        "3D000" => {
            put("kind", Some("DatabaseDoesNotExist".into()));
            put("db", quoted(1));
        }
        "28000" => {
            put("kind", Some("DatabaseAccessDenied".into()));
            put(
                "db",
                message
                    .split(',')
                    .find(|s| s.starts_with(" database"))
                    .and_then(|s| s.split('"').nth(1))
                    .map(Json::from),
            );
        }
        "28P01" => {
            put("kind", Some("AuthenticationFailed".into()));
            put(
                "user",
                message
                    .split(' ')
                    .next_back()
                    .and_then(|w| w.split('"').nth(1))
                    .map(Json::from),
            );
        }
        "40001" | "40P01" => put("kind", Some("TransactionWriteConflict".into())),
        "42P01" => {
            put("kind", Some("TableDoesNotExist".into()));
            put("table", quoted(1));
        }
        "42703" => {
            put("kind", Some("ColumnNotFound".into()));
            let column = message
                .strip_prefix("column ")
                .and_then(|r| r.strip_suffix(" does not exist"))
                .map(|c| c.replace('"', ""));
            put("column", column.map(Json::from));
        }
        "42P04" => {
            put("kind", Some("DatabaseAlreadyExists".into()));
            put("db", quoted(1));
        }
        "53300" => {
            put("kind", Some("TooManyConnections".into()));
            put("cause", Some(message.into()));
        }
        _ => {
            put("kind", Some("postgres".into()));
            put("code", Some(code.into()));
            put("severity", Some(db.severity().into()));
            put("message", Some(message.into()));
            put("detail", db.detail().map(Json::from));
            put("column", db.column().map(Json::from));
            put("hint", db.hint().map(Json::from));
        }
    }
    ExecError::Driver(DriverError::new(Json::Object(cause)))
}
