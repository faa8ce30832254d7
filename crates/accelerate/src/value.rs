//! The runtime value that flows between plan nodes, modelled on the JavaScript values of the
//! reference interpreter (numbers are doubles, int8 and numeric travel as text, dates are
//! millisecond instants), and its JSON encoding with JavaScript's number formatting, so that
//! answers are byte-for-byte what `JSON.stringify` would give.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// A record (row or object) keeping insertion order, like a JavaScript object with string keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record(pub Vec<(String, Value)>);

impl Record {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Sets `key`, keeping its position when it already exists (JavaScript assignment).
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.0.push((key.to_owned(), value));
        }
    }
}

/// A value of the interpreter.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JavaScript `undefined`: dropped from objects when encoded.
    #[default]
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    /// A `Buffer` (bytea): encoded as standard base64.
    Bytes(Vec<u8>),
    /// A `Date`: milliseconds since the Unix epoch.
    Date(i64),
    List(Vec<Value>),
    Record(Record),
}

impl Value {
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }

    /// `isEmpty` of the reference: null, undefined or an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::List(items) => items.is_empty(),
            other => other.is_nullish(),
        }
    }

    /// `typeof` as JavaScript reports it (used for join key casts).
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::Str(_) => "string",
            _ => "object",
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Record(Record(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// `JSON.parse`, keeping the key order of the text (jsonb's order, which the answers keep).
    pub fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<Value>(text)
    }

    /// `JSON.stringify` (compact).
    pub fn to_json_string(&self) -> String {
        let mut out = String::new();
        write_json(self, &mut out);
        out
    }

    /// `String(value)` / template literal interpolation for the scalar cases that matter.
    pub fn to_js_string(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => js_number(*n),
            Value::Str(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Date(ms) => js_date_iso(*ms),
            Value::List(items) => items
                .iter()
                .map(|v| {
                    if v.is_nullish() {
                        String::new()
                    } else {
                        v.to_js_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
            Value::Record(_) => "[object Object]".into(),
        }
    }

    /// `Number(value)` for numbers and numeric strings.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Str(s) => Some(js_parse_number(s)),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds values straight from JSON text, objects in the order of the text.
struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut record = Record::default();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            // JSON.parse keeps the last of duplicate keys, in the first one's place.
            record.set(&key, value);
        }
        Ok(Value::Record(record))
    }
}

/// `Number(string)`: trimmed, empty is 0, otherwise a decimal (or Infinity) literal or NaN.
pub fn js_parse_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if t.chars()
        .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// JavaScript's `Number.prototype.toString()`: shortest round-trip digits, exponent form
/// when the decimal exponent is >= 21 or <= -7.
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    // `{:e}` gives the shortest round-trip digits as d.ddddde<exp>.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if n < 0.0 { "-" } else { "" };
    format!("{sign}{}", layout_decimal(&digits, exp))
}

/// Lays out significant `digits` (no leading zeros) with decimal exponent `exp` (of the first
/// digit) the way JavaScript and decimal.js print numbers.
pub fn layout_decimal(digits: &str, exp: i32) -> String {
    let len = digits.len() as i32;
    if exp >= 21 || exp <= -7 {
        let (first, rest) = digits.split_at(1);
        let e = if exp >= 0 {
            format!("e+{exp}")
        } else {
            format!("e{exp}")
        };
        if rest.is_empty() {
            format!("{first}{e}")
        } else {
            format!("{first}.{rest}{e}")
        }
    } else if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else if exp + 1 >= len {
        format!("{}{}", digits, "0".repeat((exp + 1 - len) as usize))
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{int}.{frac}")
    }
}

/// `String(new Decimal(text))` of decimal.js: trailing zeros dropped, exponent form outside
/// 1e-7..1e21, `-0` as `0`. `None` when the text is not a decimal number.
pub fn normalize_decimal(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match body {
        "Infinity" => {
            return Some(if neg {
                "-Infinity".into()
            } else {
                "Infinity".into()
            })
        }
        "NaN" => return Some("NaN".into()),
        _ => {}
    }
    let (mant, exp_part) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let all: String = format!("{int}{frac}");
    let lead = all.chars().take_while(|c| *c == '0').count();
    let significant = all[lead..].trim_end_matches('0');
    if significant.is_empty() {
        return Some("0".into());
    }
    let exp = int.len() as i32 - 1 - lead as i32 + exp_part;
    let sign = if neg { "-" } else { "" };
    Some(format!("{sign}{}", layout_decimal(significant, exp)))
}

/// `new Date(ms).toISOString()`.
pub fn js_date_iso(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "Invalid Date".into(),
    }
}

/// `new Date(text).getTime()` for the ISO-like forms drivers and clients produce:
/// RFC 3339 with `Z` or an offset, a date-time without offset (UTC assumed here, as the
/// reference always appends one first), or a bare date (UTC midnight).
pub fn js_date_parse(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    let t2 = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t2) {
        return Some(dt.timestamp_millis());
    }
    // Offsets written as +HH or +HHMM.
    if let Ok(dt) = DateTime::parse_from_str(&t2, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Some(dt.timestamp_millis());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(&t2, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc().timestamp_millis());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(&t2, "%Y-%m-%dT%H:%M") {
        return Some(naive.and_utc().timestamp_millis());
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis());
    }
    None
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    // Buffer.from(text, 'base64') is lenient: it skips what is not base64.
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_'))
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.trim_end_matches('='))
        .unwrap_or_default()
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `JSON.stringify` of a value: undefined members dropped, undefined in lists as `null`,
/// non-finite numbers as `null`, buffers as base64 (the executor's normalisation) and dates
/// as ISO strings.
pub fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Undefined | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_finite() => out.push_str(&js_number(*n)),
        Value::Number(_) => out.push_str("null"),
        Value::Str(s) => write_json_string(s, out),
        Value::Bytes(b) => write_json_string(&base64(b), out),
        Value::Date(ms) => write_json_string(&js_date_iso(*ms), out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Record(rec) => {
            out.push('{');
            let mut first = true;
            for (k, v) in &rec.0 {
                if matches!(v, Value::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_string(k, out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(100.0), "100");
        assert_eq!(js_number(1e21), "1e+21");
        assert_eq!(js_number(1e20), "100000000000000000000");
        assert_eq!(js_number(1e-7), "1e-7");
        assert_eq!(js_number(0.000001), "0.000001");
        assert_eq!(js_number(-2.25), "-2.25");
        assert_eq!(js_number(99.9), "99.9");
    }

    #[test]
    fn decimals_normalise_like_decimal_js() {
        assert_eq!(normalize_decimal("12.3400").as_deref(), Some("12.34"));
        assert_eq!(normalize_decimal("-0.00").as_deref(), Some("0"));
        assert_eq!(normalize_decimal("1234.56").as_deref(), Some("1234.56"));
        assert_eq!(
            normalize_decimal("100000000000000000000").as_deref(),
            Some("100000000000000000000")
        );
        assert_eq!(
            normalize_decimal("1000000000000000000000").as_deref(),
            Some("1e+21")
        );
        assert_eq!(normalize_decimal("0.0000001").as_deref(), Some("1e-7"));
        assert_eq!(normalize_decimal("0.000001").as_deref(), Some("0.000001"));
        assert_eq!(
            normalize_decimal("123456789012345678901234.5678").as_deref(),
            Some("1.234567890123456789012345678e+23")
        );
        assert_eq!(normalize_decimal("1235.00").as_deref(), Some("1235"));
        assert_eq!(normalize_decimal("abc"), None);
    }

    #[test]
    fn dates_parse_and_print_like_javascript() {
        let ms = js_date_parse("2024-01-02T03:04:05.678+00:00");
        assert_eq!(
            ms.map(js_date_iso).as_deref(),
            Some("2024-01-02T03:04:05.678Z")
        );
        assert_eq!(
            js_date_parse("2024-01-02").map(js_date_iso).as_deref(),
            Some("2024-01-02T00:00:00.000Z")
        );
        assert_eq!(
            js_date_parse("2024-01-02T03:04:05.678901Z")
                .map(js_date_iso)
                .as_deref(),
            Some("2024-01-02T03:04:05.678Z")
        );
        assert_eq!(
            js_date_parse("2024-01-02T05:04:05+02")
                .map(js_date_iso)
                .as_deref(),
            Some("2024-01-02T03:04:05.000Z")
        );
    }

    #[test]
    fn json_parsing_keeps_the_text_key_order() {
        let v = Value::parse_json(
            r#"{"n": 1.50, "ok": true, "langs": ["en"], "nested": {"b": null, "a": 1}}"#,
        );
        assert_eq!(
            v.map(|v| v.to_json_string()).ok().as_deref(),
            Some(r#"{"n":1.5,"ok":true,"langs":["en"],"nested":{"b":null,"a":1}}"#)
        );
    }

    #[test]
    fn json_encoding_drops_undefined_members() {
        let v = Value::Record(Record(vec![
            ("a".into(), Value::Number(1.0)),
            ("b".into(), Value::Undefined),
            ("c".into(), Value::Bytes(vec![0, 255])),
        ]));
        assert_eq!(v.to_json_string(), r#"{"a":1,"c":"AP8="}"#);
    }
}
