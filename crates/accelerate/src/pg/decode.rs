//! Result cells: kept raw (binary format) by [`RawCell`], then decoded by column type into
//! the values adapter-pg gives (int8 and numeric as PostgreSQL prints them, timestamps as
//! `…+00:00` text, json as text, bytea as bytes, arrays element-wise); raw-result column type
//! names; types adapter-pg does not know are `UnsupportedNativeDataType`.

use std::error::Error as StdError;

use chrono::{Duration, NaiveDate};
use serde_json::json;
use tokio_postgres::types::{Kind, Type};

use crate::error::{DriverError, ExecError};
use crate::value::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

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
