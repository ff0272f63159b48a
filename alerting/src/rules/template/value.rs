//! The values a template computes with ([`TValue`]), Go's dynamic values reduced to what
//! rule templates use.

use std::collections::BTreeMap;

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TValue {
    /// Go's nil / a missing map key; prints as `<no value>`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A float (`$value`).
    Float(f64),
    /// A string.
    Str(String),
    /// A map with string keys (`$labels`).
    Map(BTreeMap<String, TValue>),
    /// A list.
    List(Vec<TValue>),
}

impl TValue {
    /// Go's name of the value's type, for error messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            TValue::Nil => "nil",
            TValue::Bool(_) => "bool",
            TValue::Int(_) => "int",
            TValue::Float(_) => "float64",
            TValue::Str(_) => "string",
            TValue::Map(_) => "map",
            TValue::List(_) => "slice",
        }
    }

    /// The value as a float, when it is a number.
    pub(super) fn as_number(&self) -> Option<f64> {
        match self {
            TValue::Int(n) => Some(*n as f64),
            TValue::Float(x) => Some(*x),
            _ => None,
        }
    }
}
