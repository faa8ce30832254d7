//! The database-adapter half of the reference (`@prisma/adapter-pg` over node `pg`), redone on
//! tokio-postgres: parameters are bound as text with unspecified types (OID 0, the server
//! infers them from the SQL; buffers go in binary), results arrive in binary and are turned
//! into the values adapter-pg would give (int8 and numeric as text, timestamps as
//! `…+00:00` text, json as text, bytea as bytes), raw-result column types are named as
//! adapter-pg names them, and server errors become the adapter's error kinds.

use std::error::Error as StdError;

use bytes::BytesMut;
use chrono::{Duration, NaiveDate};
use serde_json::{json, Map, Value as Json};
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};

use crate::error::{DriverError, ExecError};
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

/// A result cell kept raw (binary format) until it is decoded by column type.
pub struct RawCell(pub Option<Vec<u8>>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawCell {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawCell(Some(raw.to_vec())))
    }
    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawCell(None))
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// adapter-pg's `ColumnType`, by the name the raw serializer gives it.
pub fn column_type_name(ty: &Type) -> Result<&'static str, ExecError> {
    Ok(match ty.oid() {
        21 | 23 => "int",
        20 | 26 => "bigint",
        700 => "float",
        701 => "double",
        16 => "bool",
        1082 => "date",
        1083 | 1266 => "time",
        1114 | 1184 => "datetime",
        1700 | 790 => "decimal",
        114 | 3802 => "json",
        2950 => "uuid",
        1042 | 25 | 1043 | 1560 | 1562 | 869 | 650 | 142 | 19 => "string",
        17 => "bytes",
        1005 | 1007 => "int-array",
        1021 => "float-array",
        1022 => "double-array",
        1231 | 791 => "decimal-array",
        1000 => "bool-array",
        1002 => "char-array",
        1014 | 1009 | 1015 | 1563 | 1561 | 1041 | 651 | 143 => "string-array",
        1182 => "date-array",
        1183 => "time-array",
        1115 | 1185 => "datetime-array",
        199 | 3807 => "json-array",
        1001 => "bytes-array",
        2951 => "uuid-array",
        1016 | 1028 => "bigint-array",
        oid if oid >= 10000 => "string",
        _ => return Err(unsupported_type(ty)),
    })
}

fn unsupported_type(ty: &Type) -> ExecError {
    let name = ty.name().to_uppercase();
    ExecError::Driver(DriverError::new(json!({
        "kind": "UnsupportedNativeDataType",
        "type": name,
    })))
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    b.get(at..at + 2)
        .map(|s| i16::from_be_bytes([s[0], s[1]]))
        .unwrap_or(0)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// numeric_out of the binary form.
pub fn numeric_text(b: &[u8]) -> String {
    let ndigits = be_i16(b, 0).max(0) as usize;
    let weight = be_i16(b, 2) as i32;
    let sign = be_i16(b, 4) as u16;
    let dscale = be_i16(b, 6).max(0) as usize;
    match sign {
        0xC000 => return "NaN".into(),
        0xD000 => return "Infinity".into(),
        0xF000 => return "-Infinity".into(),
        _ => {}
    }
    let digits: Vec<i32> = (0..ndigits).map(|i| be_i16(b, 8 + 2 * i) as i32).collect();
    let digit = |i: i32| -> i32 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    out
}

fn money_text(cents: i64) -> String {
    let abs = cents.unsigned_abs();
    let int = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let printed = format!(
        "{}${}.{:02}",
        if cents < 0 { "-" } else { "" },
        grouped,
        abs % 100
    );
    // adapter-pg drops the first character (meant to be the currency sign).
    printed.chars().skip(1).collect()
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        out.push('.');
        out.push_str(format!("{frac:06}").trim_end_matches('0'));
    }
    out
}

fn date_text(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|base| base.checked_add_signed(Duration::days(d.into())))
            .map(|date| date.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    }
}

fn timestamp_text(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        m => {
            let days = m.div_euclid(86_400_000_000);
            let rest = m.rem_euclid(86_400_000_000);
            format!("{}T{}+00:00", date_text(days as i32), time_text(rest))
        }
    }
}

fn inet_text(b: &[u8]) -> String {
    let family = b.first().copied().unwrap_or(2);
    let bits = b.get(1).copied().unwrap_or(0);
    let is_cidr = b.get(2).copied().unwrap_or(0) != 0;
    let addr = b.get(4..).unwrap_or_default();
    let (shown, max) = if family == 3 {
        let mut octets = [0u8; 16];
        for (i, o) in addr.iter().take(16).enumerate() {
            octets[i] = *o;
        }
        (std::net::Ipv6Addr::from(octets).to_string(), 128)
    } else {
        let mut octets = [0u8; 4];
        for (i, o) in addr.iter().take(4).enumerate() {
            octets[i] = *o;
        }
        (std::net::Ipv4Addr::from(octets).to_string(), 32)
    };
    if is_cidr || bits != max {
        format!("{shown}/{bits}")
    } else {
        shown
    }
}

fn bit_text(b: &[u8]) -> String {
    let len = be_i32(b, 0).max(0) as usize;
    let bytes = b.get(4..).unwrap_or_default();
    (0..len)
        .map(|i| {
            if bytes
                .get(i / 8)
                .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
            {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

fn uuid_text(b: &[u8]) -> String {
    uuid::Uuid::from_slice(b)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// A scalar cell as adapter-pg hands it to the interpreter.
fn decode_scalar(oid: u32, ty: &Type, b: &[u8]) -> Result<Value, ExecError> {
    Ok(match oid {
        16 => Value::Bool(b.first().is_some_and(|x| *x != 0)),
        17 => Value::Bytes(b.to_vec()),
        20 => Value::Str(be_i64(b, 0).to_string()),
        21 => Value::Number(be_i16(b, 0).into()),
        23 => Value::Number(be_i32(b, 0).into()),
        26 => Value::Number((be_i32(b, 0) as u32).into()),
        700 => {
            let f = f32::from_bits(be_i32(b, 0) as u32);
            // PostgreSQL prints float4 with its shortest digits; node parses that text.
            Value::Number(format!("{f}").parse::<f64>().unwrap_or(f64::NAN))
        }
        701 => Value::Number(f64::from_bits(be_i64(b, 0) as u64)),
        1700 => Value::Str(numeric_text(b)),
        790 => Value::Str(money_text(be_i64(b, 0))),
        3802 => Value::Str(text(b.get(1..).unwrap_or_default())),
        2950 => Value::Str(uuid_text(b)),
        1082 => Value::Str(date_text(be_i32(b, 0))),
        1083 => Value::Str(time_text(be_i64(b, 0))),
        1266 => Value::Str(time_text(be_i64(b, 0))),
        1114 | 1184 => Value::Str(timestamp_text(be_i64(b, 0))),
        1560 | 1562 => Value::Str(bit_text(b)),
        869 | 650 => Value::Str(inet_text(b)),
        18 | 19 | 25 | 114 | 142 | 1042 | 1043 => Value::Str(text(b)),
        o if o >= 10000 => match ty.kind() {
            Kind::Composite(_) | Kind::Range(_) | Kind::Array(_) | Kind::Multirange(_) => {
                return Err(unsupported_type(ty))
            }
            _ => Value::Str(text(b)),
        },
        _ => return Err(unsupported_type(ty)),
    })
}

/// PostgreSQL's binary array format, elements decoded like scalars, nested by dimension.
fn decode_array(elem: &Type, b: &[u8]) -> Result<Value, ExecError> {
    let ndim = be_i32(b, 0).max(0) as usize;
    if ndim == 0 {
        return Ok(Value::List(vec![]));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| be_i32(b, 12 + 8 * i).max(0) as usize)
        .collect();
    let mut at = 12 + 8 * ndim;
    let total: usize = dims.iter().product();
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = be_i32(b, at);
        at += 4;
        if len < 0 {
            flat.push(Value::Null);
        } else {
            let end = at + len as usize;
            let cell = b.get(at..end).unwrap_or_default();
            flat.push(decode_scalar(elem.oid(), elem, cell)?);
            at = end;
        }
    }
    fn nest(flat: &mut std::vec::IntoIter<Value>, dims: &[usize]) -> Value {
        match dims.split_first() {
            Some((n, [])) => Value::List(flat.by_ref().take(*n).collect()),
            Some((n, rest)) => Value::List((0..*n).map(|_| nest(flat, rest)).collect()),
            None => Value::Null,
        }
    }
    Ok(nest(&mut flat.into_iter(), &dims))
}

/// Decodes one cell of a result column.
pub fn decode_cell(ty: &Type, cell: Option<&[u8]>) -> Result<Value, ExecError> {
    let Some(b) = cell else {
        return Ok(Value::Null);
    };
    match ty.kind() {
        Kind::Array(elem) => decode_array(elem, b),
        _ => decode_scalar(ty.oid(), ty, b),
    }
}

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

    #[test]
    fn numeric_and_money_print_like_postgres() {
        // 12.3400: ndigits 2, weight 0, sign 0, dscale 4, digits 12, 3400
        let b = [0, 2, 0, 0, 0, 0, 0, 4, 0, 12, 0x0d, 0x48];
        assert_eq!(numeric_text(&b), "12.3400");
        // -0.05: ndigits 1, weight -1, sign neg, dscale 2, digits 500
        let b = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(numeric_text(&b), "-0.05");
        assert_eq!(money_text(123456), "1,234.56");
        assert_eq!(time_text(11_045_678_000), "03:04:05.678");
        assert_eq!(timestamp_text(0), "2000-01-01T00:00:00+00:00");
    }
}
