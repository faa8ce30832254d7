//! Plan arguments and SQL rendering: `evaluate_arg` resolves placeholders and generator calls;
//! `render_query` turns a `DbQuery` into statements with numbered placeholders and bind
//! values, splitting a chunkable statement whose binds exceed the PostgreSQL limit Prisma
//! uses (32 766) — the interpreter then runs the chunks in one transaction.

use crate::error::ExecError;
use crate::generators::GeneratorRun;
use crate::pg::{encode_param, PgParam};
use crate::plan::{ArgArity, ArgType, DbQuery, Fragment, PlaceholderFormat};
use crate::scope::Scope;
use crate::value::{js_date_parse, Value};

/// Prisma's bind-value limit for PostgreSQL (`query-interpreter.ts`).
pub const MAX_BIND_VALUES: usize = 32766;

/// One statement ready to run.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<PgParam>,
}

/// `evaluateArg`: placeholders and generator calls until concrete, lists element-wise.
pub fn evaluate_arg(
    arg: &serde_json::Value,
    scope: &Scope,
    gens: &GeneratorRun<'_>,
) -> Result<Value, ExecError> {
    if let serde_json::Value::Object(map) = arg {
        match map.get("prisma__type").and_then(|t| t.as_str()) {
            Some("param") => {
                let inner = map.get("prisma__value");
                let name = inner
                    .and_then(|v| v.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                let ty = inner
                    .and_then(|v| v.get("type"))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                let found = match scope.get(name) {
                    None | Some(Value::Undefined) => {
                        return Err(ExecError::Internal(format!(
                            "Missing value for query variable {name}"
                        )))
                    }
                    Some(v) => v.clone(),
                };
                return Ok(match found {
                    Value::Str(s) if ty == "DateTime" => {
                        js_date_parse(&s).map(Value::Date).unwrap_or(Value::Str(s))
                    }
                    other => other,
                });
            }
            Some("generatorCall") => {
                let inner = map.get("prisma__value");
                let name = inner
                    .and_then(|v| v.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                let args = inner
                    .and_then(|v| v.get("args"))
                    .and_then(|a| a.as_array())
                    .map(|a| {
                        a.iter()
                            .map(|x| evaluate_arg(x, scope, gens))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                return gens.call(name, &args);
            }
            Some(other) => {
                return Err(ExecError::Unsupported(format!(
                    "plan value of type '{other}' is not supported"
                )))
            }
            None => {}
        }
    }
    if let serde_json::Value::Array(items) = arg {
        return items
            .iter()
            .map(|x| evaluate_arg(x, scope, gens))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List);
    }
    Ok(Value::from_json(arg))
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::List(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn malformed(msg: &str) -> ExecError {
    ExecError::Internal(format!("Malformed query template. {msg}"))
}

/// Renders a query into one statement, or several when a chunkable one is over the limit.
pub fn render_query(
    query: &DbQuery,
    scope: &Scope,
    gens: &GeneratorRun<'_>,
) -> Result<Vec<Statement>, ExecError> {
    match query {
        DbQuery::RawSql {
            sql,
            args,
            arg_types,
        } => {
            let params = args
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    Ok(encode_param(
                        &evaluate_arg(a, scope, gens)?,
                        arg_types.get(i),
                    ))
                })
                .collect::<Result<Vec<_>, ExecError>>()?;
            Ok(vec![Statement {
                sql: sql.clone(),
                params,
            }])
        }
        DbQuery::TemplateSql {
            fragments,
            placeholder_format,
            args,
            arg_types,
            chunkable,
        } => {
            let args = args
                .iter()
                .map(|a| evaluate_arg(a, scope, gens))
                .collect::<Result<Vec<_>, _>>()?;
            let chunks = if *chunkable {
                chunk_params(fragments, &args, MAX_BIND_VALUES)?
            } else {
                vec![args]
            };
            chunks
                .iter()
                .map(|params| {
                    let st = render_template(fragments, placeholder_format, params, arg_types)?;
                    if st.params.len() > MAX_BIND_VALUES {
                        return Err(ExecError::user(
                            "P2029",
                            "The query parameter limit supported by your database is exceeded.",
                            Default::default(),
                        ));
                    }
                    Ok(st)
                })
                .collect()
        }
    }
}

fn placeholder(format: &PlaceholderFormat, n: &mut usize) -> String {
    let s = if format.has_numbering {
        format!("{}{}", format.prefix, n)
    } else {
        format.prefix.clone()
    };
    *n += 1;
    s
}

fn render_template(
    fragments: &[Fragment],
    format: &PlaceholderFormat,
    params: &[Value],
    arg_types: &[ArgType],
) -> Result<Statement, ExecError> {
    let mut sql = String::new();
    let mut out = Vec::new();
    let mut n = 1usize;
    let mut index = 0usize;
    let next = |index: &mut usize| -> Result<(Value, Option<&ArgType>), ExecError> {
        let v = params.get(*index).cloned().ok_or_else(|| {
            malformed(&format!(
                "Fragments attempt to read over {} parameters.",
                params.len()
            ))
        })?;
        let t = arg_types.get(*index);
        *index += 1;
        Ok((v, t))
    };
    for fragment in fragments {
        match fragment {
            Fragment::StringChunk { chunk } => sql.push_str(chunk),
            Fragment::Parameter => {
                let (v, t) = next(&mut index)?;
                sql.push_str(&placeholder(format, &mut n));
                out.push(encode_param(&v, t));
            }
            Fragment::ParameterTuple {
                item_prefix,
                item_separator,
                item_suffix,
            } => {
                let (v, t) = next(&mut index)?;
                let items = as_list(&v);
                sql.push('(');
                if items.is_empty() {
                    sql.push_str("NULL");
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(item_separator);
                    }
                    sql.push_str(item_prefix);
                    sql.push_str(&placeholder(format, &mut n));
                    sql.push_str(item_suffix);
                    out.push(encode_param(item, t));
                }
                sql.push(')');
            }
            Fragment::ParameterTupleList {
                item_prefix,
                item_separator,
                item_suffix,
                group_separator,
            } => {
                let (v, t) = next(&mut index)?;
                let Value::List(tuples) = v else {
                    return Err(malformed("Tuple list expected."));
                };
                if tuples.is_empty() {
                    return Err(malformed("Tuple list cannot be empty."));
                }
                for (g, tuple) in tuples.iter().enumerate() {
                    let Value::List(elements) = tuple else {
                        return Err(malformed("Tuple expected."));
                    };
                    if g > 0 {
                        sql.push_str(group_separator);
                    }
                    sql.push_str(item_prefix);
                    for (i, el) in elements.iter().enumerate() {
                        if i > 0 {
                            sql.push_str(item_separator);
                        }
                        sql.push_str(&placeholder(format, &mut n));
                        let el_type = match t {
                            Some(tt) if tt.arity == ArgArity::Tuple => tt.elements.get(i),
                            other => other,
                        };
                        out.push(encode_param(el, el_type));
                    }
                    sql.push_str(item_suffix);
                }
            }
        }
    }
    Ok(Statement { sql, params: out })
}

/// The bind count of each parameter-bearing fragment.
fn fragment_sizes(fragments: &[Fragment], params: &[Value]) -> Vec<(usize, usize)> {
    let mut sizes = Vec::new();
    let mut index = 0;
    for (fi, fragment) in fragments.iter().enumerate() {
        let size = match fragment {
            Fragment::StringChunk { .. } => continue,
            Fragment::Parameter => 1,
            Fragment::ParameterTuple { .. } => {
                params.get(index).map(|v| as_list(v).len()).unwrap_or(0)
            }
            Fragment::ParameterTupleList { .. } => match params.get(index) {
                Some(Value::List(tuples)) => tuples.iter().map(|t| as_list(t).len()).sum(),
                _ => 0,
            },
        };
        sizes.push((fi, size));
        index += 1;
    }
    sizes
}

/// `chunkParams`: splits the largest list so each statement stays within `max` binds.
fn chunk_params(
    fragments: &[Fragment],
    params: &[Value],
    max: usize,
) -> Result<Vec<Vec<Value>>, ExecError> {
    let sizes = fragment_sizes(fragments, params);
    let total: usize = sizes.iter().map(|(_, s)| s).sum();
    if total <= max {
        return Ok(vec![params.to_vec()]);
    }
    let largest = sizes.iter().map(|(_, s)| *s).max().unwrap_or(0);
    let Some(pos) = sizes.iter().position(|(_, s)| *s == largest) else {
        return Ok(vec![params.to_vec()]);
    };
    let others = total - largest;
    if others >= max {
        return Ok(vec![params.to_vec()]);
    }
    let available = max - others;
    let chunks: Vec<Value> = match (&fragments[sizes[pos].0], &params[pos]) {
        (Fragment::ParameterTuple { .. }, v) => as_list(v)
            .chunks(available.max(1))
            .map(|c| Value::List(c.to_vec()))
            .collect(),
        (Fragment::ParameterTupleList { .. }, Value::List(tuples)) => {
            let mut out = Vec::new();
            let mut current: Vec<Value> = Vec::new();
            let mut count = 0;
            for tuple in tuples {
                let len = as_list(tuple).len();
                if !current.is_empty() && count + len > available {
                    out.push(Value::List(std::mem::take(&mut current)));
                    count = 0;
                }
                current.push(tuple.clone());
                count += len;
            }
            if !current.is_empty() {
                out.push(Value::List(current));
            }
            out
        }
        _ => return Ok(vec![params.to_vec()]),
    };
    Ok(chunks
        .into_iter()
        .map(|chunk| {
            let mut p = params.to_vec();
            p[pos] = chunk;
            p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generators::{Generators, SystemEntropy};
    use std::collections::HashMap;
    use std::sync::Arc;

    fn template(json: serde_json::Value) -> DbQuery {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn renders_placeholders_tuples_and_empty_tuples() {
        let q = template(serde_json::json!({
            "type": "templateSql",
            "fragments": [
                {"type": "stringChunk", "chunk": "SELECT * FROM t WHERE a = "}, {"type": "parameter"},
                {"type": "stringChunk", "chunk": " AND b IN "},
                {"type": "parameterTuple", "itemPrefix": "", "itemSeparator": ",", "itemSuffix": ""},
                {"type": "stringChunk", "chunk": " AND c IN "},
                {"type": "parameterTuple", "itemPrefix": "", "itemSeparator": ",", "itemSuffix": ""}
            ],
            "placeholderFormat": {"prefix": "$", "hasNumbering": true},
            "args": [{"prisma__type": "param", "prisma__value": {"name": "%1", "type": "Int"}}, [1, 2], []],
            "argTypes": [{"arity": "scalar", "scalarType": "int"}, {"arity": "list", "scalarType": "int"}, {"arity": "list", "scalarType": "int"}],
            "chunkable": true
        }));
        let gens = Generators::new(Arc::new(SystemEntropy));
        let run = GeneratorRun::new(&gens);
        let scope = Scope::root(HashMap::from([("%1".to_owned(), Value::Number(7.0))]));
        let st = render_query(&q, &scope, &run).unwrap_or_default();
        assert_eq!(st.len(), 1);
        assert_eq!(
            st[0].sql,
            "SELECT * FROM t WHERE a = $1 AND b IN ($2,$3) AND c IN (NULL)"
        );
        assert_eq!(st[0].params.len(), 3);
    }

    #[test]
    fn missing_placeholder_is_an_error() {
        let gens = Generators::new(Arc::new(SystemEntropy));
        let run = GeneratorRun::new(&gens);
        let scope = Scope::root(HashMap::new());
        let arg = serde_json::json!({"prisma__type": "param", "prisma__value": {"name": "x", "type": "Int"}});
        assert!(
            matches!(evaluate_arg(&arg, &scope, &run), Err(ExecError::Internal(m)) if m.contains("query variable x"))
        );
    }

    #[test]
    fn large_lists_are_chunked() {
        let fragments = vec![
            Fragment::StringChunk {
                chunk: "x IN ".into(),
            },
            Fragment::ParameterTuple {
                item_prefix: String::new(),
                item_separator: ",".into(),
                item_suffix: String::new(),
            },
        ];
        let list = Value::List((0..25).map(|i| Value::Number(i.into())).collect());
        let chunks = chunk_params(&fragments, &[list], 10).unwrap_or_default();
        assert_eq!(chunks.len(), 3);
    }
}
