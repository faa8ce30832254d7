//! Parameter and `let` scopes: an immutable chain of frames, the request's `params` at the
//! root, each `let` binding a child frame (lookups walk towards the root, like the
//! reference's `Object.create` chain).

use std::collections::HashMap;
use std::sync::Arc;

use crate::value::Value;

enum Frame {
    Root(HashMap<String, Value>),
    Binding {
        name: String,
        value: Value,
        parent: Scope,
    },
}

/// A cheap-to-clone scope.
#[derive(Clone)]
pub struct Scope(Arc<Frame>);

impl Scope {
    pub fn root(params: HashMap<String, Value>) -> Self {
        Scope(Arc::new(Frame::Root(params)))
    }

    pub fn bind(&self, name: &str, value: Value) -> Self {
        Scope(Arc::new(Frame::Binding {
            name: name.to_owned(),
            value,
            parent: self.clone(),
        }))
    }

    /// The bound value, `None` when unbound (JavaScript `undefined`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        let mut frame = &self.0;
        loop {
            match frame.as_ref() {
                Frame::Root(map) => return map.get(name),
                Frame::Binding {
                    name: n,
                    value,
                    parent,
                } => {
                    if n == name {
                        return Some(value);
                    }
                    frame = &parent.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_bindings_shadow_outer_ones() {
        let root = Scope::root(HashMap::from([("a".to_owned(), Value::Number(1.0))]));
        let inner = root.bind("a", Value::Number(2.0)).bind("b", Value::Null);
        assert_eq!(inner.get("a"), Some(&Value::Number(2.0)));
        assert_eq!(root.get("a"), Some(&Value::Number(1.0)));
        assert_eq!(inner.get("c"), None);
    }
}
