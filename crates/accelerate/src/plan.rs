//! Serde types of Prisma Client 7's query plans (`client-engine-runtime/src/query-plan.ts`,
//! 7.10.0). Values inside plans (`PrismaValue`: literals, placeholders, generator calls) are
//! kept as JSON and evaluated by `render::evaluate_arg`. A node, rule or field type this
//! executor does not know is a typed [`crate::error::ExecError::Unsupported`], never a guess.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::ExecError;

/// A plan node: `{"type": <name>, "args": …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "camelCase")]
pub enum Node {
    Value(serde_json::Value),
    Seq(Vec<Node>),
    Get {
        name: String,
    },
    Let {
        bindings: Vec<Binding>,
        expr: Box<Node>,
    },
    GetFirstNonEmpty {
        names: Vec<String>,
    },
    Concat(Vec<Node>),
    Sum(Vec<Node>),
    Query(DbQuery),
    Execute(DbQuery),
    Reverse(Box<Node>),
    Unique(Box<Node>),
    Required(Box<Node>),
    MapField {
        field: String,
        records: Box<Node>,
    },
    Join(JoinArgs),
    Transaction(Box<Node>),
    DataMap(DataMapArgs),
    Validate(ValidateArgs),
    If(IfArgs),
    Unit,
    Diff {
        from: Box<Node>,
        to: Box<Node>,
        fields: Vec<String>,
    },
    Process {
        expr: Box<Node>,
        operations: InMemoryOps,
    },
    InitializeRecord {
        expr: Box<Node>,
        fields: HashMap<String, FieldInitializer>,
    },
    MapRecord {
        expr: Box<Node>,
        fields: indexmap::IndexMap<String, FieldOperation>,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Binding {
    pub name: String,
    pub expr: Node,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinArgs {
    pub parent: Box<Node>,
    pub children: Vec<JoinExpression>,
    pub can_assume_strict_equality: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinExpression {
    pub child: Node,
    pub on: Vec<(String, String)>,
    pub parent_field: String,
    pub is_relation_unique: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DataMapArgs {
    pub expr: Box<Node>,
    pub structure: ResultNode,
    #[serde(default)]
    pub enums: HashMap<String, HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateArgs {
    pub expr: Box<Node>,
    pub rules: Vec<DataRule>,
    pub error_identifier: ErrorIdentifier,
    #[serde(default)]
    pub context: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorIdentifier {
    RelationViolation,
    MissingRelatedRecord,
    MissingRecord,
    IncompleteConnectInput,
    IncompleteConnectOutput,
    RecordsNotConnected,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IfArgs {
    pub value: Box<Node>,
    pub rule: DataRule,
    pub then: Box<Node>,
    #[serde(rename = "else")]
    pub otherwise: Box<Node>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "camelCase")]
pub enum DataRule {
    RowCountEq(i64),
    RowCountNeq(i64),
    AffectedRowCountEq(f64),
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FieldInitializer {
    Value { value: serde_json::Value },
    LastInsertId,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum FieldOperation {
    Set(serde_json::Value),
    Add(serde_json::Value),
    Subtract(serde_json::Value),
    Multiply(serde_json::Value),
    Divide(serde_json::Value),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pagination {
    pub cursor: Option<serde_json::Map<String, serde_json::Value>>,
    pub take: Option<i64>,
    pub skip: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InMemoryOps {
    pub pagination: Option<Pagination>,
    pub distinct: Option<Vec<String>>,
    #[serde(default)]
    pub reverse: bool,
    pub linking_fields: Option<Vec<String>>,
    #[serde(default)]
    pub nested: indexmap::IndexMap<String, InMemoryOps>,
}

/// The `structure` of a `dataMap` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ResultNode {
    AffectedRows,
    #[serde(rename_all = "camelCase")]
    Object {
        fields: indexmap::IndexMap<String, ResultNode>,
        serialized_name: Option<String>,
        #[serde(default)]
        skip_nulls: bool,
    },
    #[serde(rename_all = "camelCase")]
    Field {
        db_name: String,
        field_type: FieldType,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Arity {
    Required,
    Optional,
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScalarKind {
    String,
    Int,
    Bigint,
    Float,
    Boolean,
    Json,
    Object,
    Datetime,
    Decimal,
    Unsupported,
    Enum,
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BytesEncoding {
    Array,
    Base64,
    Hex,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldType {
    pub arity: Arity,
    #[serde(rename = "type")]
    pub kind: ScalarKind,
    pub name: Option<String>,
    pub encoding: Option<BytesEncoding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum DbQuery {
    #[serde(rename_all = "camelCase")]
    RawSql {
        sql: String,
        args: Vec<serde_json::Value>,
        arg_types: Vec<ArgType>,
    },
    #[serde(rename_all = "camelCase")]
    TemplateSql {
        fragments: Vec<Fragment>,
        placeholder_format: PlaceholderFormat,
        args: Vec<serde_json::Value>,
        arg_types: Vec<ArgType>,
        #[serde(default)]
        chunkable: bool,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Fragment {
    StringChunk {
        chunk: String,
    },
    Parameter,
    #[serde(rename_all = "camelCase")]
    ParameterTuple {
        item_prefix: String,
        item_separator: String,
        item_suffix: String,
    },
    #[serde(rename_all = "camelCase")]
    ParameterTupleList {
        item_prefix: String,
        item_separator: String,
        item_suffix: String,
        group_separator: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceholderFormat {
    pub prefix: String,
    pub has_numbering: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ArgArity {
    Scalar,
    List,
    Tuple,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ArgScalarType {
    String,
    Int,
    Bigint,
    Float,
    Decimal,
    Boolean,
    Enum,
    Uuid,
    Json,
    Datetime,
    Bytes,
    #[serde(other)]
    Unknown,
}

/// `ArgType` or the tuple form of `DynamicArgType`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgType {
    pub arity: ArgArity,
    pub scalar_type: Option<ArgScalarType>,
    pub db_type: Option<String>,
    #[serde(default)]
    pub elements: Vec<ArgType>,
}

/// Parses a plan, turning serde's "unknown variant" into the typed unsupported error.
pub fn parse_plan(json: serde_json::Value) -> Result<Node, ExecError> {
    serde_json::from_value::<Node>(json).map_err(|e| plan_error(&e))
}

/// The typed unsupported error for a plan serde could not read.
pub fn plan_error(e: &serde_json::Error) -> ExecError {
    let text = e.to_string();
    match text.split_once("unknown variant `") {
        Some((_, rest)) => {
            let name = rest.split('`').next().unwrap_or_default();
            ExecError::Unsupported(format!("plan element '{name}' is not supported"))
        }
        None => ExecError::Unsupported(format!("the query plan could not be read ({text})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_node_is_unsupported() {
        let plan = serde_json::json!({"type": "seq", "args": [{"type": "teleport", "args": {}}]});
        match parse_plan(plan) {
            Err(ExecError::Unsupported(msg)) => assert!(msg.contains("teleport"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unit_node_without_args_parses() {
        let plan = serde_json::json!({"type": "seq", "args": [{"type": "unit"}]});
        assert!(parse_plan(plan).is_ok());
    }
}
