//! Results of `rawSql` queries (`serializeRawSql`): `{columns, types, rows}` with adapter-pg's
//! column type names and its per-type value conversions (int truncated, int8 as text, json
//! parsed, booleans).

use tokio_postgres::types::Type;

use crate::error::ExecError;
use crate::pg::column_type_name;
use crate::value::{Record, Value};

fn convert(value: Value, type_name: &str) -> Result<Value, ExecError> {
    if matches!(value, Value::Null) {
        return Ok(value);
    }
    if let Some(elem) = type_name.strip_suffix("-array") {
        return match value {
            Value::List(items) => items
                .into_iter()
                .map(|v| convert(v, elem))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            other => Ok(other),
        };
    }
    Ok(match (type_name, value) {
        ("int", Value::Number(n)) => Value::Number(n.trunc()),
        ("int", Value::Str(s)) => Value::Number(crate::value::js_parse_number(&s).trunc()),
        ("json", Value::Str(s)) => {
            Value::parse_json(&s).map_err(|e| ExecError::Internal(e.to_string()))?
        }
        ("bool", Value::Str(s)) => Value::Bool(s == "true" || s == "1"),
        ("bool", Value::Number(n)) => Value::Bool(n == 1.0),
        (_, other) => other,
    })
}

/// Builds the raw result of one or more statements' rows.
pub fn serialize(columns: &[(String, Type)], rows: Vec<Vec<Value>>) -> Result<Value, ExecError> {
    let types: Vec<&'static str> = columns
        .iter()
        .map(|(_, t)| column_type_name(t))
        .collect::<Result<_, _>>()?;
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(types.iter())
                .map(|(v, t)| convert(v, t))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Record(Record(vec![
        (
            "columns".into(),
            Value::List(columns.iter().map(|(n, _)| Value::Str(n.clone())).collect()),
        ),
        (
            "types".into(),
            Value::List(types.iter().map(|t| Value::Str((*t).into())).collect()),
        ),
        ("rows".into(), Value::List(rows)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_results_name_types_and_parse_json() {
        let cols = vec![
            ("i".to_owned(), Type::INT4),
            ("j".to_owned(), Type::JSONB),
            ("b".to_owned(), Type::INT8),
        ];
        let rows = vec![vec![
            Value::Number(1.0),
            Value::Str("{\"a\":1}".into()),
            Value::Str("3".into()),
        ]];
        let out = serialize(&cols, rows)
            .map(|v| v.to_json_string())
            .unwrap_or_default();
        assert_eq!(
            out,
            r#"{"columns":["i","j","b"],"types":["int","json","bigint"],"rows":[[1,{"a":1},"3"]]}"#
        );
    }

    #[test]
    fn unknown_builtin_type_is_unsupported() {
        assert!(serialize(&[("v".to_owned(), Type::VOID)], vec![]).is_err());
    }
}
