//! In-memory record processing: `process` (distinct, pagination per parent group, reverse,
//! nested relations), record keys and key matching (`getRecordKey`, `doKeysMatch`), the
//! `join` of child records onto parents with the reference's key casts, and `diff`.

use crate::error::ExecError;
use crate::value::{js_date_parse, Record, Value};

/// `InMemoryOps` with the cursor's placeholders already evaluated.
#[derive(Debug, Clone, Default)]
pub struct Ops {
    pub pagination: Option<Page>,
    pub distinct: Option<Vec<String>>,
    pub reverse: bool,
    pub linking_fields: Option<Vec<String>>,
    pub nested: Vec<(String, Ops)>,
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub cursor: Option<Record>,
    pub take: Option<i64>,
    pub skip: Option<i64>,
}

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&Value::Undefined)
}

/// `getRecordKey`: the JSON text of the listed fields (after optional casts).
pub fn record_key(record: &Record, fields: &[String], casts: Option<&[Option<KeyCast>]>) -> String {
    let values: Vec<Value> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let v = field(record, f);
            match casts.and_then(|c| c.get(i).copied().flatten()) {
                Some(cast) if !matches!(v, Value::Null) => cast.apply(v),
                _ => v.clone(),
            }
        })
        .collect();
    Value::List(values).to_json_string()
}

/// The casts `inferKeyCasts` picks from the JavaScript type of parent key values.
#[derive(Debug, Clone, Copy)]
pub enum KeyCast {
    Number,
    String,
    Boolean,
}

impl KeyCast {
    fn apply(self, v: &Value) -> Value {
        match self {
            KeyCast::Number => Value::Number(match v {
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Null => 0.0,
                other => other.as_number().unwrap_or(f64::NAN),
            }),
            KeyCast::String => Value::Str(v.to_js_string()),
            KeyCast::Boolean => Value::Bool(match v {
                Value::Undefined | Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => *n != 0.0 && !n.is_nan(),
                Value::Str(s) => !s.is_empty(),
                _ => true,
            }),
        }
    }
}

fn infer_key_casts(parents: &[Record], keys: &[String]) -> Vec<Option<KeyCast>> {
    let mut casts: Vec<Option<KeyCast>> = vec![None; keys.len()];
    let mut found = 0;
    for parent in parents {
        for (i, key) in keys.iter().enumerate() {
            let v = field(parent, key);
            if !matches!(v, Value::Null) && casts[i].is_none() {
                casts[i] = match v.type_of() {
                    "number" => Some(KeyCast::Number),
                    "string" => Some(KeyCast::String),
                    "boolean" => Some(KeyCast::Boolean),
                    _ => None,
                };
                found += 1;
            }
        }
        if found == keys.len() {
            break;
        }
    }
    casts
}

fn as_record(v: Value) -> Result<Record, ExecError> {
    match v {
        Value::Record(r) => Ok(r),
        other => Err(ExecError::Internal(format!(
            "Expected object, got {}",
            other.type_of()
        ))),
    }
}

/// One child relation of a `join`, its records already evaluated.
pub struct JoinChild {
    pub on: Vec<(String, String)>,
    pub parent_field: String,
    pub is_relation_unique: bool,
    pub records: Value,
}

/// `attachChildrenToParents`.
pub fn attach_children(
    parent: Value,
    children: Vec<JoinChild>,
    strict: bool,
) -> Result<Value, ExecError> {
    let was_list = matches!(parent, Value::List(_));
    let mut parents: Vec<Record> = match parent {
        Value::List(items) => items.into_iter().map(as_record).collect::<Result<_, _>>()?,
        other => vec![as_record(other)?],
    };
    for child in children {
        let parent_keys: Vec<String> = child.on.iter().map(|(p, _)| p.clone()).collect();
        let child_keys: Vec<String> = child.on.iter().map(|(_, c)| c.clone()).collect();
        let mut index: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, p) in parents.iter_mut().enumerate() {
            index
                .entry(record_key(p, &parent_keys, None))
                .or_default()
                .push(i);
            p.set(
                &child.parent_field,
                if child.is_relation_unique {
                    Value::Null
                } else {
                    Value::List(vec![])
                },
            );
        }
        let casts = if strict {
            None
        } else {
            Some(infer_key_casts(&parents, &parent_keys))
        };
        let records = match child.records {
            Value::List(items) => items,
            other => vec![other],
        };
        for record in records {
            if matches!(record, Value::Null) {
                continue;
            }
            let Value::Record(rec) = &record else {
                return Err(ExecError::Internal(format!(
                    "Expected object, got {}",
                    record.type_of()
                )));
            };
            let key = record_key(rec, &child_keys, casts.as_deref());
            for &i in index.get(&key).map(Vec::as_slice).unwrap_or_default() {
                if child.is_relation_unique {
                    parents[i].set(&child.parent_field, record.clone());
                } else if let Some((_, Value::List(list))) = parents[i]
                    .0
                    .iter_mut()
                    .find(|(k, _)| *k == child.parent_field)
                {
                    list.push(record.clone());
                }
            }
        }
    }
    let mut values: Vec<Value> = parents.into_iter().map(Value::Record).collect();
    Ok(if was_list {
        Value::List(values)
    } else {
        values.pop().unwrap_or(Value::Null)
    })
}

/// `diff`: records of `from` whose key on `fields` is not among `to`'s.
pub fn diff(from: Value, to: Value, fields: &[String]) -> Value {
    let key = |v: &Value| match v {
        Value::Record(r) => Some(record_key(r, fields, None)),
        _ => None,
    };
    let to_list = match to {
        Value::List(items) => items,
        other => vec![other],
    };
    let seen: std::collections::HashSet<Option<String>> = to_list.iter().map(key).collect();
    let from_list = match from {
        Value::List(items) => items,
        other => vec![other],
    };
    Value::List(
        from_list
            .into_iter()
            .filter(|v| !seen.contains(&key(v)))
            .collect(),
    )
}

fn values_match(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Date(a), Value::Date(b)) => a == b,
        (Value::Date(a), Value::Str(s)) | (Value::Str(s), Value::Date(a)) => {
            js_date_parse(s) == Some(*a)
        }
        (Value::Bytes(a), Value::Bytes(b)) => a == b,
        (Value::Number(a), other) | (other, Value::Number(a))
            if !matches!(other, Value::Number(_)) =>
        {
            other.as_number() == Some(*a)
        }
        (a, b) => a == b,
    }
}

/// `doKeysMatch`: every key of the smaller record equal in both.
pub fn keys_match(lhs: &Record, rhs: &Record) -> bool {
    let smaller = if lhs.0.len() < rhs.0.len() { lhs } else { rhs };
    smaller
        .0
        .iter()
        .all(|(k, _)| values_match(field(lhs, k), field(rhs, k)))
}

/// `processRecords`.
pub fn process(value: Value, ops: &Ops) -> Result<Value, ExecError> {
    match value {
        Value::Null | Value::Undefined => Ok(value),
        Value::Str(text) => {
            let parsed =
                Value::parse_json(&text).map_err(|e| ExecError::Internal(e.to_string()))?;
            process(parsed, ops)
        }
        Value::List(items) => {
            let records = items
                .into_iter()
                .map(as_record)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::List(
                process_many(records, ops)?
                    .into_iter()
                    .map(Value::Record)
                    .collect(),
            ))
        }
        Value::Record(record) => Ok(match process_one(record, ops)? {
            Some(r) => Value::Record(r),
            None => Value::Null,
        }),
        other => Err(ExecError::Internal(format!(
            "Expected object, got {}",
            other.type_of()
        ))),
    }
}

fn process_one(record: Record, ops: &Ops) -> Result<Option<Record>, ExecError> {
    if let Some(page) = &ops.pagination {
        if page.skip.is_some_and(|s| s > 0) || page.take == Some(0) {
            return Ok(None);
        }
        if let Some(cursor) = &page.cursor {
            if !keys_match(&record, cursor) {
                return Ok(None);
            }
        }
    }
    process_nested(record, &ops.nested).map(Some)
}

fn process_nested(mut record: Record, nested: &[(String, Ops)]) -> Result<Record, ExecError> {
    for (key, ops) in nested {
        let current = record.get(key).cloned().unwrap_or(Value::Undefined);
        record.set(key, process(current, ops)?);
    }
    Ok(record)
}

fn process_many(mut records: Vec<Record>, ops: &Ops) -> Result<Vec<Record>, ExecError> {
    if let Some(distinct) = &ops.distinct {
        let mut fields = distinct.clone();
        fields.extend(ops.linking_fields.iter().flatten().cloned());
        let mut seen = std::collections::HashSet::new();
        records.retain(|r| seen.insert(record_key(r, &fields, None)));
    }
    if let Some(page) = &ops.pagination {
        records = match &ops.linking_fields {
            None => paginate(records, page),
            Some(linking) => {
                let mut groups: Vec<(String, Vec<Record>)> = Vec::new();
                for r in records {
                    let key = record_key(&r, linking, None);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, g)) => g.push(r),
                        None => groups.push((key, vec![r])),
                    }
                }
                groups.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                groups
                    .into_iter()
                    .flat_map(|(_, g)| paginate(g, page))
                    .collect()
            }
        };
    }
    if ops.reverse {
        records.reverse();
    }
    if ops.nested.is_empty() {
        return Ok(records);
    }
    records
        .into_iter()
        .map(|r| process_nested(r, &ops.nested))
        .collect()
}

fn paginate(list: Vec<Record>, page: &Page) -> Vec<Record> {
    let start_at = match &page.cursor {
        Some(cursor) => match list.iter().position(|r| keys_match(r, cursor)) {
            Some(i) => i as i64,
            None => return vec![],
        },
        None => 0,
    };
    let len = list.len() as i64;
    // Array.prototype.slice semantics, negative bounds counted from the end.
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let start = norm(start_at + page.skip.unwrap_or(0));
    let end = match page.take {
        Some(t) => norm(start_at + page.skip.unwrap_or(0) + t),
        None => len,
    };
    if end <= start {
        return vec![];
    }
    list.into_iter()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, Value)]) -> Record {
        Record(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn join_casts_child_keys_to_the_parent_type() {
        let parent = Value::List(vec![Value::Record(rec(&[("id", Value::Number(1.0))]))]);
        let child = JoinChild {
            on: vec![("id".into(), "userId".into())],
            parent_field: "posts".into(),
            is_relation_unique: false,
            records: Value::List(vec![Value::Record(rec(&[(
                "userId",
                Value::Str("1".into()),
            )]))]),
        };
        let Ok(Value::List(out)) = attach_children(parent, vec![child], false) else {
            panic!()
        };
        let Value::Record(p) = &out[0] else { panic!() };
        assert!(matches!(p.get("posts"), Some(Value::List(l)) if l.len() == 1));
    }

    #[test]
    fn distinct_then_take_from_the_end() {
        let rows: Vec<Value> = [1.0, 1.0, 2.0, 3.0]
            .iter()
            .map(|n| Value::Record(rec(&[("a", Value::Number(*n))])))
            .collect();
        let ops = Ops {
            distinct: Some(vec!["a".into()]),
            pagination: Some(Page {
                cursor: None,
                take: Some(2),
                skip: None,
            }),
            reverse: true,
            ..Ops::default()
        };
        let Ok(Value::List(out)) = process(Value::List(rows), &ops) else {
            panic!()
        };
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Value::Record(rec(&[("a", Value::Number(2.0))])));
    }
}
