//! The plan interpreter (`QueryInterpreter` of client-engine-runtime 7.10.0): evaluates every
//! node type against one database connection, runs `transaction` nodes and chunked
//! statements in an internal transaction unless an interactive one is already open, and maps
//! database errors as the reference does (model queries → P-codes / P2039, raw → P2010).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures::{pin_mut, TryStreamExt};
use serde_json::Map;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::data_map;
use crate::error::ExecError;
use crate::generators::{GeneratorRun, Generators};
use crate::pg::{decode_cell, driver_error, unspecified_type, RawCell};
use crate::plan::{
    DataRule, DbQuery, ErrorIdentifier, FieldInitializer, FieldOperation, InMemoryOps, Node,
};
use crate::process::{self, JoinChild, Ops, Page};
use crate::raw;
use crate::render::{evaluate_arg, render_query, Statement};
use crate::scope::Scope;
use crate::value::{Record, Value};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs one plan on one connection.
pub struct Interpreter<'a> {
    client: &'a Client,
    gens: GeneratorRun<'a>,
    unspecified: Type,
}

/// Runs `plan` with the request's `params`; `in_transaction` when the connection is inside an
/// interactive transaction (then `transaction` nodes do not open one of their own).
pub async fn run_plan(
    client: &Client,
    generators: &Generators,
    plan: &Node,
    params: HashMap<String, Value>,
    in_transaction: bool,
) -> Result<Value, ExecError> {
    let interpreter = Interpreter {
        client,
        gens: GeneratorRun::new(generators),
        unspecified: unspecified_type(),
    };
    interpreter
        .eval(plan, Scope::root(params), in_transaction)
        .await
        .map_err(ExecError::user_facing)
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::List(items) => items,
        other => vec![other],
    }
}

fn as_number(v: &Value) -> Result<f64, ExecError> {
    v.as_number()
        .ok_or_else(|| ExecError::Internal(format!("Expected number, got {}", v.type_of())))
}

impl<'a> Interpreter<'a> {
    fn eval<'s>(
        &'s self,
        node: &'s Node,
        scope: Scope,
        in_tx: bool,
    ) -> BoxFut<'s, Result<Value, ExecError>> {
        Box::pin(async move {
            match node {
                Node::Value(arg) => evaluate_arg(arg, &scope, &self.gens),
                Node::Seq(nodes) => {
                    let mut last = Value::Undefined;
                    for n in nodes {
                        last = self.eval(n, scope.clone(), in_tx).await?;
                    }
                    Ok(last)
                }
                Node::Get { name } => Ok(scope.get(name).cloned().unwrap_or(Value::Undefined)),
                Node::Let { bindings, expr } => {
                    let mut inner = scope;
                    for b in bindings {
                        let v = self.eval(&b.expr, inner.clone(), in_tx).await?;
                        inner = inner.bind(&b.name, v);
                    }
                    self.eval(expr, inner, in_tx).await
                }
                Node::GetFirstNonEmpty { names } => Ok(names
                    .iter()
                    .filter_map(|n| scope.get(n))
                    .find(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or(Value::List(vec![]))),
                Node::Concat(nodes) => {
                    let mut out = Vec::new();
                    for n in nodes {
                        out.extend(as_list(self.eval(n, scope.clone(), in_tx).await?));
                    }
                    Ok(Value::List(out))
                }
                Node::Sum(nodes) => {
                    let mut total: Option<f64> = None;
                    for n in nodes {
                        let v = as_number(&self.eval(n, scope.clone(), in_tx).await?)?;
                        total = Some(total.map_or(v, |t| t + v));
                    }
                    Ok(Value::Number(total.unwrap_or(0.0)))
                }
                Node::Query(q) => self.query(q, &scope, in_tx, false).await,
                Node::Execute(q) => self.query(q, &scope, in_tx, true).await,
                Node::Reverse(inner) => Ok(match self.eval(inner, scope, in_tx).await? {
                    Value::List(mut items) => {
                        items.reverse();
                        Value::List(items)
                    }
                    other => other,
                }),
                Node::Unique(inner) => match self.eval(inner, scope, in_tx).await? {
                    Value::List(mut items) if items.len() <= 1 => {
                        Ok(items.pop().unwrap_or(Value::Null))
                    }
                    Value::List(items) => Err(ExecError::Internal(format!(
                        "Expected zero or one element, got {}",
                        items.len()
                    ))),
                    other => Ok(other),
                },
                Node::Required(inner) => {
                    let v = self.eval(inner, scope, in_tx).await?;
                    if v.is_empty() {
                        return Err(ExecError::Internal("Required value is empty".into()));
                    }
                    Ok(v)
                }
                Node::MapField { field, records } => {
                    Ok(map_field(self.eval(records, scope, in_tx).await?, field))
                }
                Node::Join(args) => {
                    let parent = self.eval(&args.parent, scope.clone(), in_tx).await?;
                    if matches!(parent, Value::Null) {
                        return Ok(Value::Null);
                    }
                    let mut children = Vec::with_capacity(args.children.len());
                    for c in &args.children {
                        children.push(JoinChild {
                            on: c.on.clone(),
                            parent_field: c.parent_field.clone(),
                            is_relation_unique: c.is_relation_unique,
                            records: self.eval(&c.child, scope.clone(), in_tx).await?,
                        });
                    }
                    process::attach_children(parent, children, args.can_assume_strict_equality)
                }
                Node::Transaction(inner) => {
                    if in_tx {
                        return self.eval(inner, scope, true).await;
                    }
                    self.begin().await?;
                    let result = self.eval(inner, scope, true).await;
                    self.finish(result).await
                }
                Node::DataMap(args) => {
                    let v = self.eval(&args.expr, scope, in_tx).await?;
                    data_map::apply(v, &args.structure, &args.enums)
                }
                Node::Validate(args) => {
                    let v = self.eval(&args.expr, scope, in_tx).await?;
                    if !args.rules.iter().all(|r| satisfies(&v, r)) {
                        return Err(validation_error(&v, args.error_identifier, &args.context));
                    }
                    Ok(v)
                }
                Node::If(args) => {
                    let v = self.eval(&args.value, scope.clone(), in_tx).await?;
                    let branch = if satisfies(&v, &args.rule) {
                        &args.then
                    } else {
                        &args.otherwise
                    };
                    self.eval(branch, scope, in_tx).await
                }
                Node::Unit => Ok(Value::Undefined),
                Node::Diff { from, to, fields } => {
                    let from = self.eval(from, scope.clone(), in_tx).await?;
                    let to = self.eval(to, scope, in_tx).await?;
                    Ok(process::diff(from, to, fields))
                }
                Node::Process { expr, operations } => {
                    let v = self.eval(expr, scope.clone(), in_tx).await?;
                    let ops = self.resolve_ops(operations, &scope)?;
                    process::process(v, &ops)
                }
                Node::InitializeRecord { expr, fields } => {
                    self.eval(expr, scope.clone(), in_tx).await?;
                    let mut record = Record::default();
                    for (name, init) in fields {
                        let v = match init {
                            FieldInitializer::Value { value } => {
                                evaluate_arg(value, &scope, &self.gens)?
                            }
                            // PostgreSQL plans use RETURNING; there is no last insert id.
                            FieldInitializer::LastInsertId => Value::Undefined,
                        };
                        record.set(name, v);
                    }
                    Ok(Value::Record(record))
                }
                Node::MapRecord { expr, fields } => {
                    let mut record = match self.eval(expr, scope.clone(), in_tx).await? {
                        Value::Null => Record::default(),
                        Value::Record(r) => r,
                        other => {
                            return Err(ExecError::Internal(format!(
                                "Expected object, got {}",
                                other.type_of()
                            )))
                        }
                    };
                    for (name, op) in fields {
                        let current = record.get(name).cloned().unwrap_or(Value::Undefined);
                        let v = self.field_operation(op, &current, &scope)?;
                        record.set(name, v);
                    }
                    Ok(Value::Record(record))
                }
            }
        })
    }

    fn field_operation(
        &self,
        op: &FieldOperation,
        current: &Value,
        scope: &Scope,
    ) -> Result<Value, ExecError> {
        let arg = |v: &serde_json::Value| evaluate_arg(v, scope, &self.gens);
        Ok(match op {
            FieldOperation::Set(v) => arg(v)?,
            FieldOperation::Add(v) => Value::Number(as_number(current)? + as_number(&arg(v)?)?),
            FieldOperation::Subtract(v) => {
                Value::Number(as_number(current)? - as_number(&arg(v)?)?)
            }
            FieldOperation::Multiply(v) => {
                Value::Number(as_number(current)? * as_number(&arg(v)?)?)
            }
            FieldOperation::Divide(v) => {
                let lhs = as_number(current)?;
                let rhs = as_number(&arg(v)?)?;
                if rhs == 0.0 {
                    Value::Null
                } else {
                    Value::Number(lhs / rhs)
                }
            }
        })
    }

    fn resolve_ops(&self, ops: &InMemoryOps, scope: &Scope) -> Result<Ops, ExecError> {
        let pagination = match &ops.pagination {
            Some(p) => {
                let cursor = match &p.cursor {
                    Some(map) => Some(Record(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), evaluate_arg(v, scope, &self.gens)?)))
                            .collect::<Result<Vec<_>, ExecError>>()?,
                    )),
                    None => None,
                };
                Some(Page {
                    cursor,
                    take: p.take,
                    skip: p.skip,
                })
            }
            None => None,
        };
        Ok(Ops {
            pagination,
            distinct: ops.distinct.clone(),
            reverse: ops.reverse,
            linking_fields: ops.linking_fields.clone(),
            nested: ops
                .nested
                .iter()
                .map(|(k, o)| Ok((k.clone(), self.resolve_ops(o, scope)?)))
                .collect::<Result<Vec<_>, ExecError>>()?,
        })
    }

    async fn begin(&self) -> Result<(), ExecError> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| driver_error(&e).user_facing())
    }

    async fn finish(&self, result: Result<Value, ExecError>) -> Result<Value, ExecError> {
        match result {
            Ok(v) => {
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| driver_error(&e).user_facing())?;
                Ok(v)
            }
            Err(e) => {
                if let Err(rollback) = self.client.batch_execute("ROLLBACK").await {
                    tracing::debug!(error = %rollback, "failed to roll back an internal transaction");
                }
                Err(e)
            }
        }
    }

    async fn query(
        &self,
        q: &DbQuery,
        scope: &Scope,
        in_tx: bool,
        execute: bool,
    ) -> Result<Value, ExecError> {
        let is_raw = matches!(q, DbQuery::RawSql { .. });
        let statements = render_query(q, scope, &self.gens)?;
        let chunked = statements.len() > 1 && !in_tx;
        if chunked {
            self.begin().await?;
        }
        let result = self
            .run_statements(&statements, is_raw, execute)
            .await
            .map_err(|e| match e {
                ExecError::Driver(d) if is_raw => d.into_raw_user_facing(),
                ExecError::Driver(d) => d.into_user_facing(),
                other => other,
            });
        if chunked {
            self.finish(result).await
        } else {
            result
        }
    }

    async fn run_statements(
        &self,
        statements: &[Statement],
        is_raw: bool,
        execute: bool,
    ) -> Result<Value, ExecError> {
        let mut affected = 0u64;
        let mut columns: Vec<(String, Type)> = Vec::new();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for st in statements {
            if execute && st.params.is_empty() {
                affected += self.execute_simple(&st.sql).await?;
                continue;
            }
            let params = st
                .params
                .iter()
                .map(|p| (p as &(dyn ToSql + Sync), self.unspecified.clone()));
            let stream = self
                .client
                .query_typed_raw(&st.sql, params)
                .await
                .map_err(|e| driver_error(&e))?;
            pin_mut!(stream);
            while let Some(row) = stream.try_next().await.map_err(|e| driver_error(&e))? {
                if execute {
                    continue;
                }
                if columns.is_empty() {
                    columns = row
                        .columns()
                        .iter()
                        .map(|c| (c.name().to_owned(), c.type_().clone()))
                        .collect();
                }
                let mut cells = Vec::with_capacity(columns.len());
                for (i, (_, ty)) in columns.iter().enumerate() {
                    let cell: RawCell = row
                        .try_get(i)
                        .map_err(|e| ExecError::Internal(e.to_string()))?;
                    cells.push(decode_cell(ty, cell.0.as_deref())?);
                }
                rows.push(cells);
            }
            affected += stream.rows_affected().unwrap_or(0);
        }
        if execute {
            return Ok(Value::Number(affected as f64));
        }
        if is_raw {
            if columns.is_empty() {
                columns = self.describe_columns(&statements[0]).await?;
            }
            return raw::serialize(&columns, rows);
        }
        Ok(Value::List(
            rows.into_iter()
                .map(|cells| {
                    let mut rec = Record::default();
                    for ((name, _), v) in columns.iter().zip(cells) {
                        rec.set(name, v);
                    }
                    Value::Record(rec)
                })
                .collect(),
        ))
    }

    /// node-pg sends a statement without bind values with the simple query protocol, which
    /// allows several statements in one string; its `rowCount` is then that of the one
    /// statement, and undefined (0) for several.
    async fn execute_simple(&self, sql: &str) -> Result<u64, ExecError> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| driver_error(&e))?;
        let counts: Vec<u64> = messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect();
        Ok(match counts.as_slice() {
            [one] => *one,
            _ => 0,
        })
    }

    /// Column names and types of a raw query that returned no rows.
    async fn describe_columns(&self, st: &Statement) -> Result<Vec<(String, Type)>, ExecError> {
        let types = vec![self.unspecified.clone(); st.params.len()];
        let prepared = self
            .client
            .prepare_typed(&st.sql, &types)
            .await
            .map_err(|e| driver_error(&e))?;
        Ok(prepared
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_().clone()))
            .collect())
    }
}

fn map_field(value: Value, field: &str) -> Value {
    match value {
        Value::List(items) => Value::List(items.into_iter().map(|v| map_field(v, field)).collect()),
        Value::Record(r) => match r.get(field) {
            Some(v) if !v.is_nullish() => v.clone(),
            _ => Value::Null,
        },
        other => other,
    }
}

/// `doesSatisfyRule`.
pub fn satisfies(data: &Value, rule: &DataRule) -> bool {
    let count = |n: i64| -> bool {
        match data {
            Value::List(items) => items.len() as i64 == n,
            Value::Null => n == 0,
            _ => n == 1,
        }
    };
    match rule {
        DataRule::RowCountEq(n) => count(*n),
        DataRule::RowCountNeq(n) => !count(*n),
        DataRule::AffectedRowCountEq(n) => matches!(data, Value::Number(v) if v == n),
        DataRule::Never => false,
    }
}

fn validation_error(
    data: &Value,
    id: ErrorIdentifier,
    context: &Map<String, serde_json::Value>,
) -> ExecError {
    let ctx = |k: &str| {
        context
            .get(k)
            .map(|v| Value::from_json(v).to_js_string())
            .unwrap_or_else(|| "undefined".into())
    };
    let found = match data {
        Value::List(items) => items.len().to_string(),
        other => other.to_js_string(),
    };
    const MISSING: &str = "An operation failed because it depends on one or more records that were required but not found.";
    let (code, message) = match id {
        ErrorIdentifier::RelationViolation => (
            "P2014",
            format!(
                "The change you are trying to make would violate the required relation '{}' between the `{}` and `{}` models.",
                ctx("relation"),
                ctx("modelA"),
                ctx("modelB")
            ),
        ),
        ErrorIdentifier::MissingRecord => ("P2025", format!("{MISSING} No record was found for {}.", ctx("operation"))),
        ErrorIdentifier::MissingRelatedRecord => {
            let hint = match context.get("neededFor").and_then(|v| v.as_str()) {
                Some(n) if !n.is_empty() => format!(" (needed to {n})"),
                _ => String::new(),
            };
            (
                "P2025",
                format!(
                    "{MISSING} No '{}' record{hint} was found for {} on {} relation '{}'.",
                    ctx("model"),
                    ctx("operation"),
                    ctx("relationType"),
                    ctx("relation")
                ),
            )
        }
        ErrorIdentifier::IncompleteConnectInput => (
            "P2025",
            format!("{MISSING} Expected {} records to be connected, found only {found}.", ctx("expectedRows")),
        ),
        ErrorIdentifier::IncompleteConnectOutput => (
            "P2018",
            format!(
                "The required connected records were not found. Expected {} records to be connected after connect operation on {} relation '{}', found {found}.",
                ctx("expectedRows"),
                ctx("relationType"),
                ctx("relation")
            ),
        ),
        ErrorIdentifier::RecordsNotConnected => (
            "P2017",
            format!(
                "The records for relation `{}` between the `{}` and `{}` models are not connected.",
                ctx("relation"),
                ctx("parent"),
                ctx("child")
            ),
        ),
    };
    ExecError::user(code, message, context.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_count_rules_follow_the_reference() {
        assert!(satisfies(&Value::Null, &DataRule::RowCountEq(0)));
        assert!(satisfies(
            &Value::List(vec![Value::Null]),
            &DataRule::RowCountEq(1)
        ));
        assert!(satisfies(&Value::Undefined, &DataRule::RowCountEq(1)));
        assert!(!satisfies(
            &Value::Number(2.0),
            &DataRule::AffectedRowCountEq(1.0)
        ));
        assert!(!satisfies(&Value::Null, &DataRule::Never));
    }

    #[test]
    fn missing_record_message_and_meta() {
        let ctx = serde_json::json!({"operation": "an update"});
        let Some(ctx) = ctx.as_object() else { panic!() };
        match validation_error(&Value::Null, ErrorIdentifier::MissingRecord, ctx) {
            ExecError::UserFacing {
                code,
                message,
                meta,
            } => {
                assert_eq!(code, "P2025");
                assert!(message.ends_with("No record was found for an update."));
                assert_eq!(meta["operation"], "an update");
            }
            other => panic!("{other:?}"),
        }
    }
}
