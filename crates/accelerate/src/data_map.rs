//! The data mapper (`dataMap` nodes): rows keyed by column name become Prisma result objects
//! keyed by field name, every non-JSON-native value tagged (`{"$type":"BigInt",…}`) and already
//! normalised as the executor's `normalizeJsonProtocolValues` leaves it (decimal.js text,
//! ISO dates, compact JSON, base64).

use std::collections::HashMap;

use serde_json::Map;

use crate::error::ExecError;
use crate::plan::{Arity, BytesEncoding, FieldType, ResultNode, ScalarKind};
use crate::value::{
    base64, base64_decode, js_date_iso, js_date_parse, js_number, normalize_decimal, Record, Value,
};

pub type Enums = HashMap<String, HashMap<String, String>>;

fn mapper_error(message: String) -> ExecError {
    ExecError::user("P2023", message, Map::new())
}

fn tagged(kind: &str, value: String) -> Value {
    Value::Record(Record(vec![
        ("$type".into(), Value::Str(kind.into())),
        ("value".into(), Value::Str(value)),
    ]))
}

fn describe(v: &Value) -> String {
    format!("{}: {}", v.type_of(), v.to_js_string())
}

/// `applyDataMap`.
pub fn apply(data: Value, structure: &ResultNode, enums: &Enums) -> Result<Value, ExecError> {
    match structure {
        ResultNode::AffectedRows => match data {
            Value::Number(n) => Ok(Value::Record(Record(vec![(
                "count".into(),
                Value::Number(n),
            )]))),
            other => Err(mapper_error(format!(
                "Expected an affected rows count, got: {}",
                describe(&other)
            ))),
        },
        ResultNode::Object {
            fields, skip_nulls, ..
        } => map_array_or_object(data, fields, enums, *skip_nulls),
        ResultNode::Field { field_type, .. } => map_value(data, "<result>", field_type, enums),
    }
}

fn map_array_or_object(
    data: Value,
    fields: &indexmap::IndexMap<String, ResultNode>,
    enums: &Enums,
    skip_nulls: bool,
) -> Result<Value, ExecError> {
    match data {
        Value::Null | Value::Undefined => Ok(Value::Null),
        Value::List(rows) => rows
            .into_iter()
            .filter(|r| !(skip_nulls && matches!(r, Value::Null)))
            .map(|r| map_object(r, fields, enums))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        Value::Record(_) => map_object(data, fields, enums),
        Value::Str(text) => {
            let decoded = Value::parse_json(&text).map_err(|_| {
                mapper_error(
                    "Expected an array or object, got a string that is not valid JSON".into(),
                )
            })?;
            map_array_or_object(decoded, fields, enums, skip_nulls)
        }
        other => Err(mapper_error(format!(
            "Expected an array or an object, got: {}",
            other.type_of()
        ))),
    }
}

fn map_object(
    data: Value,
    fields: &indexmap::IndexMap<String, ResultNode>,
    enums: &Enums,
) -> Result<Value, ExecError> {
    let Value::Record(row) = data else {
        return Err(mapper_error(format!(
            "Expected an object, but got '{}'",
            data.type_of()
        )));
    };
    let mut out = Record::default();
    for (name, node) in fields {
        match node {
            ResultNode::AffectedRows => {
                return Err(mapper_error(format!(
                    "Unexpected 'AffectedRows' node in data mapping for field '{name}'"
                )))
            }
            ResultNode::Object {
                fields: nested,
                serialized_name,
                skip_nulls,
            } => {
                let target = match serialized_name {
                    Some(key) => match row.get(key) {
                        Some(v) => v.clone(),
                        None => {
                            return Err(mapper_error(format!(
                                "Missing data field (Object): '{name}'"
                            )))
                        }
                    },
                    None => Value::Record(row.clone()),
                };
                out.set(
                    name,
                    map_array_or_object(target, nested, enums, *skip_nulls)?,
                );
            }
            ResultNode::Field {
                db_name,
                field_type,
            } => match row.get(db_name) {
                Some(v) => out.set(name, map_field(v.clone(), db_name, field_type, enums)?),
                None => {
                    return Err(mapper_error(format!(
                        "Missing data field (Value): '{db_name}'"
                    )))
                }
            },
        }
    }
    Ok(Value::Record(out))
}

fn map_field(
    value: Value,
    column: &str,
    ty: &FieldType,
    enums: &Enums,
) -> Result<Value, ExecError> {
    if matches!(value, Value::Null | Value::Undefined) {
        return Ok(if ty.arity == Arity::List {
            Value::List(vec![])
        } else {
            Value::Null
        });
    }
    if ty.arity == Arity::List {
        let Value::List(items) = value else {
            return Err(mapper_error(format!(
                "Expected a list in column '{column}', got {}",
                describe(&value)
            )));
        };
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| map_value(v, &format!("{column}[{i}]"), ty, enums))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List);
    }
    map_value(value, column, ty, enums)
}

/// `normalizeDateTime` then `new Date(…).toISOString()`.
fn datetime_iso(text: &str) -> Option<String> {
    js_date_parse(text)
        .or_else(|| js_date_parse(&format!("1970-01-01T{text}")))
        .map(js_date_iso)
}

fn map_value(
    value: Value,
    column: &str,
    ty: &FieldType,
    enums: &Enums,
) -> Result<Value, ExecError> {
    let bad = |what: &str, v: &Value| {
        mapper_error(format!(
            "Expected {what} in column '{column}', got {}",
            describe(v)
        ))
    };
    Ok(match ty.kind {
        ScalarKind::Unsupported => value,
        ScalarKind::String => match value {
            Value::Str(_) => value,
            other => return Err(bad("a string", &other)),
        },
        ScalarKind::Int => match &value {
            Value::Number(n) => Value::Number(n.trunc()),
            Value::Str(s) => {
                let n = crate::value::js_parse_number(s).trunc();
                if !n.is_finite() {
                    return Err(mapper_error(format!(
                        "Expected an integer in column '{column}', got string: {s}"
                    )));
                }
                if n.abs() > 9_007_199_254_740_991.0 {
                    return Err(mapper_error(format!(
                        "Integer value in column '{column}' is too large to represent as a JavaScript number without loss of precision, got: {s}. Consider using BigInt type."
                    )));
                }
                Value::Number(n)
            }
            other => return Err(bad("an integer", other)),
        },
        ScalarKind::Bigint => match &value {
            Value::Number(n) => tagged("BigInt", js_number(*n)),
            Value::Str(s) => tagged("BigInt", s.clone()),
            other => return Err(bad("a bigint", other)),
        },
        ScalarKind::Float => match &value {
            Value::Number(_) => value,
            Value::Str(s) => {
                let n = crate::value::js_parse_number(s);
                let lower = s.to_lowercase();
                if n.is_nan() && !matches!(lower.trim_start_matches(['+', '-']), "nan") {
                    return Err(mapper_error(format!(
                        "Expected a float in column '{column}', got string: {s}"
                    )));
                }
                Value::Number(n)
            }
            other => return Err(bad("a float", other)),
        },
        ScalarKind::Boolean => match &value {
            Value::Bool(_) => value,
            Value::Number(n) => Value::Bool(*n == 1.0),
            Value::Str(s) => match s.as_str() {
                "true" | "TRUE" | "1" => Value::Bool(true),
                "false" | "FALSE" | "0" => Value::Bool(false),
                _ => return Err(bad("a boolean", &value)),
            },
            Value::Bytes(b) => Value::Bool(b.iter().any(|x| *x != 0)),
            Value::List(items) => Value::Bool(
                items
                    .iter()
                    .any(|x| !matches!(x, Value::Number(n) if *n == 0.0)),
            ),
            other => return Err(bad("a boolean", other)),
        },
        ScalarKind::Decimal => {
            let text = match &value {
                Value::Number(n) => js_number(*n),
                Value::Str(s) => s.clone(),
                other => return Err(bad("a decimal", other)),
            };
            let normalized = normalize_decimal(&text).ok_or_else(|| {
                ExecError::Internal(format!("[DecimalError] Invalid argument: {text}"))
            })?;
            tagged("Decimal", normalized)
        }
        ScalarKind::Datetime => match &value {
            Value::Str(s) => tagged(
                "DateTime",
                datetime_iso(s).ok_or_else(|| ExecError::Internal("Invalid time value".into()))?,
            ),
            Value::Number(n) => tagged("DateTime", js_date_iso(*n as i64)),
            Value::Date(ms) => tagged("DateTime", js_date_iso(*ms)),
            other => return Err(bad("a date", other)),
        },
        ScalarKind::Object => tagged("Json", value.to_json_string()),
        ScalarKind::Json => {
            let text = match &value {
                Value::Str(s) => s.clone(),
                other => other.to_json_string(),
            };
            let reparsed =
                Value::parse_json(&text).map_err(|e| ExecError::Internal(e.to_string()))?;
            tagged("Json", reparsed.to_json_string())
        }
        ScalarKind::Bytes => match (ty.encoding.unwrap_or(BytesEncoding::Array), &value) {
            (BytesEncoding::Base64, Value::Str(s)) => tagged("Bytes", base64(&base64_decode(s))),
            (BytesEncoding::Hex, Value::Str(s)) if s.starts_with("\\x") => {
                let bytes = hex::decode(&s[2..]).unwrap_or_default();
                tagged("Bytes", base64(&bytes))
            }
            (BytesEncoding::Array, Value::Bytes(b)) => tagged("Bytes", base64(b)),
            (BytesEncoding::Array, Value::List(items)) => {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|x| x.as_number().unwrap_or(0.0) as u8)
                    .collect();
                tagged("Bytes", base64(&bytes))
            }
            (_, other) => return Err(bad("a byte array", other)),
        },
        ScalarKind::Enum => {
            let name = ty.name.clone().unwrap_or_default();
            let def = enums
                .get(&name)
                .ok_or_else(|| mapper_error(format!("Unknown enum '{name}'")))?;
            let key = value.to_js_string();
            match def.get(&key) {
                Some(v) => Value::Str(v.clone()),
                None => {
                    return Err(mapper_error(format!(
                        "Value '{key}' not found in enum '{name}'"
                    )))
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: &str) -> ResultNode {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scalars_are_tagged_and_normalised() {
        let structure = node(
            r#"{"type": "object", "serializedName": null, "skipNulls": false, "fields": {
                "balance": {"type": "field", "dbName": "balance", "fieldType": {"arity": "required", "type": "decimal"}},
                "points": {"type": "field", "dbName": "points", "fieldType": {"arity": "required", "type": "bigint"}},
                "at": {"type": "field", "dbName": "at", "fieldType": {"arity": "required", "type": "datetime"}},
                "tags": {"type": "field", "dbName": "tags", "fieldType": {"arity": "list", "type": "string"}},
                "profile": {"type": "field", "dbName": "profile", "fieldType": {"arity": "optional", "type": "json"}}
            }}"#,
        );
        let row = Value::Record(Record(vec![
            ("balance".into(), Value::Str("12.3400".into())),
            ("points".into(), Value::Str("9007199254740993".into())),
            (
                "at".into(),
                Value::Str("2024-01-02T03:04:05.678+00:00".into()),
            ),
            ("tags".into(), Value::Null),
            (
                "profile".into(),
                Value::Str("{\"b\": 1, \"a\": [1.50]}".into()),
            ),
        ]));
        let out = apply(row, &structure, &Enums::new())
            .map(|v| v.to_json_string())
            .unwrap_or_default();
        assert_eq!(
            out,
            r#"{"balance":{"$type":"Decimal","value":"12.34"},"points":{"$type":"BigInt","value":"9007199254740993"},"at":{"$type":"DateTime","value":"2024-01-02T03:04:05.678Z"},"tags":[],"profile":{"$type":"Json","value":"{\"b\":1,\"a\":[1.5]}"}}"#
        );
    }

    #[test]
    fn unknown_enum_value_is_p2023() {
        let structure = node(
            r#"{"type": "field", "dbName": "r",
            "fieldType": {"arity": "required", "type": "enum", "name": "Role"}}"#,
        );
        let enums = Enums::from([(
            "Role".to_owned(),
            HashMap::from([("A".to_owned(), "A".to_owned())]),
        )]);
        let err = apply(Value::Str("B".into()), &structure, &enums);
        assert!(matches!(err, Err(ExecError::UserFacing { code, .. }) if code == "P2023"));
    }
}
