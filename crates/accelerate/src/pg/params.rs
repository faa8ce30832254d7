//! Bind values as node-pg sends them after adapter-pg's `mapArg`: every parameter in text
//! format with an unspecified type (OID 0, so PostgreSQL infers it from the SQL), buffers in
//! binary, dates as UTC wall time in the form the column's `dbType` wants, lists as quoted
//! array literals, objects as JSON text.

use std::error::Error as StdError;

use bytes::BytesMut;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};

use crate::plan::{ArgScalarType, ArgType};
use crate::value::{js_date_parse, js_number, Value};

/// One bind value as node-pg would send it.
#[derive(Debug, Clone)]
pub enum PgParam {
    Null,
    Text(String),
    Binary(Vec<u8>),
}

impl ToSql for PgParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            PgParam::Null => Ok(IsNull::Yes),
            PgParam::Text(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            PgParam::Binary(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            PgParam::Binary(_) => Format::Binary,
            _ => Format::Text,
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The "unspecified" parameter type (OID 0): PostgreSQL infers it from the statement.
pub fn unspecified_type() -> Type {
    Type::new("unknown".into(), 0, Kind::Pseudo, "pg_catalog".into())
}

fn pad(n: i64, width: usize) -> String {
    format!("{n:0width$}")
}

fn format_js_date(ms: i64, db_type: Option<&str>) -> String {
    let Some(dt) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) else {
        return "NaN".into();
    };
    use chrono::{Datelike, Timelike};
    let millis = ms.rem_euclid(1000);
    let frac = if millis != 0 {
        format!(".{}", pad(millis, 3))
    } else {
        String::new()
    };
    let time = format!(
        "{}:{}:{}{}",
        pad(dt.hour().into(), 2),
        pad(dt.minute().into(), 2),
        pad(dt.second().into(), 2),
        frac
    );
    let date = format!(
        "{}-{}-{}",
        pad(dt.year().into(), 4),
        pad(dt.month().into(), 2),
        pad(dt.day().into(), 2)
    );
    match db_type {
        Some("TIME") | Some("TIMETZ") => time,
        Some("DATE") => date,
        _ => format!("{date} {time}"),
    }
}

/// `mapArg` of adapter-pg, then node-pg's `prepareValue`.
pub fn encode_param(value: &Value, arg_type: Option<&ArgType>) -> PgParam {
    let scalar = arg_type.and_then(|t| t.scalar_type);
    let db_type = arg_type.and_then(|t| t.db_type.as_deref());
    match value {
        Value::Null | Value::Undefined => PgParam::Null,
        Value::List(items) => PgParam::Text(array_literal(items, arg_type)),
        Value::Str(s) if scalar == Some(ArgScalarType::Datetime) => match js_date_parse(s) {
            Some(ms) => PgParam::Text(format_js_date(ms, db_type)),
            None => PgParam::Text(s.clone()),
        },
        Value::Date(ms) => PgParam::Text(format_js_date(*ms, db_type)),
        Value::Str(s) if scalar == Some(ArgScalarType::Bytes) => {
            PgParam::Binary(crate::value::base64_decode(s))
        }
        Value::Bytes(b) => PgParam::Binary(b.clone()),
        Value::Bool(b) => PgParam::Text(b.to_string()),
        Value::Number(n) => PgParam::Text(js_number(*n)),
        Value::Str(s) => PgParam::Text(s.clone()),
        Value::Record(_) => PgParam::Text(value.to_json_string()),
    }
}

/// node-pg's `arrayString`: a PostgreSQL array literal with every element quoted.
fn array_literal(items: &[Value], arg_type: Option<&ArgType>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null | Value::Undefined => out.push_str("NULL"),
            Value::List(inner) => out.push_str(&array_literal(inner, arg_type)),
            other => {
                let text = match encode_param(other, arg_type) {
                    PgParam::Null => {
                        out.push_str("NULL");
                        continue;
                    }
                    PgParam::Text(t) => t,
                    PgParam::Binary(b) => format!("\\x{}", hex::encode(b)),
                };
                out.push('"');
                out.push_str(&text.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ArgArity;

    fn arg(scalar: ArgScalarType, db: Option<&str>, arity: ArgArity) -> ArgType {
        ArgType {
            arity,
            scalar_type: Some(scalar),
            db_type: db.map(String::from),
            elements: vec![],
        }
    }

    fn text_of(p: PgParam) -> String {
        match p {
            PgParam::Text(t) => t,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn datetimes_are_sent_as_utc_wall_time() {
        let t = arg(ArgScalarType::Datetime, Some("TIMESTAMP"), ArgArity::Scalar);
        let v = Value::Str("2024-01-02T03:04:05.678Z".into());
        assert_eq!(
            text_of(encode_param(&v, Some(&t))),
            "2024-01-02 03:04:05.678"
        );
        let v = Value::Str("2024-01-02T03:04:05.000Z".into());
        assert_eq!(text_of(encode_param(&v, Some(&t))), "2024-01-02 03:04:05");
        let d = arg(ArgScalarType::Datetime, Some("DATE"), ArgArity::Scalar);
        assert_eq!(
            text_of(encode_param(
                &Value::Str("2024-01-02T03:04:05Z".into()),
                Some(&d)
            )),
            "2024-01-02"
        );
    }

    #[test]
    fn lists_become_quoted_array_literals() {
        let t = arg(ArgScalarType::String, None, ArgArity::List);
        let v = Value::List(vec![
            Value::Str("a\"b".into()),
            Value::Null,
            Value::Number(3.0),
        ]);
        assert_eq!(text_of(encode_param(&v, Some(&t))), r#"{"a\"b",NULL,"3"}"#);
    }

    #[test]
    fn bytes_go_binary() {
        let t = arg(ArgScalarType::Bytes, None, ArgArity::Scalar);
        match encode_param(&Value::Str("CQg=".into()), Some(&t)) {
            PgParam::Binary(b) => assert_eq!(b, vec![9, 8]),
            other => panic!("{other:?}"),
        }
    }
}
