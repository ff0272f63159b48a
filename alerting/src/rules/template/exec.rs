//! Execution of a parsed template against a data value, with Go text/template's printing
//! and truthiness rules.

use std::collections::BTreeMap;

use super::error::TemplateError;
use super::funcs::call;
use super::gofmt::go_value;
use super::parse::{Arg, Command, Node, Pipeline};
use super::value::TValue;

/// Variables in scope: a stack so that `if`/`range` bodies can drop theirs on exit.
pub(crate) struct Scope {
    vars: Vec<(String, TValue)>,
    dot: TValue,
}

impl Scope {
    pub(crate) fn new(dot: TValue, vars: Vec<(String, TValue)>) -> Scope {
        Scope { vars, dot }
    }

    fn get(&self, name: &str) -> Result<TValue, TemplateError> {
        if name == "$" {
            return Ok(self.dot.clone());
        }
        for (n, v) in self.vars.iter().rev() {
            if n == name {
                return Ok(v.clone());
            }
        }
        Err(TemplateError::exec(format!("undefined variable: {name}")))
    }

    fn set(&mut self, name: &str, value: TValue) {
        for (n, v) in self.vars.iter_mut().rev() {
            if n == name {
                *v = value;
                return;
            }
        }
        self.vars.push((name.to_string(), value));
    }
}

/// Runs `nodes`, appending output to `out`.
pub(crate) fn run(nodes: &[Node], scope: &mut Scope, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = pipeline(p, scope)?;
                if p.decl.is_none() {
                    out.push_str(&go_value(&v));
                }
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let depth = scope.vars.len();
                let c = pipeline(cond, scope)?;
                let branch = if truthy(&c) { then } else { otherwise };
                let r = run(branch, scope, out);
                scope.vars.truncate(depth);
                r?;
            }
            Node::Range {
                key_var,
                value_var,
                over,
                body,
                otherwise,
            } => {
                let depth = scope.vars.len();
                let coll = pipeline(over, scope)?;
                let entries: Vec<(TValue, TValue)> = match coll {
                    TValue::Map(m) => m.into_iter().map(|(k, v)| (TValue::Str(k), v)).collect(),
                    TValue::List(l) => l
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (TValue::Int(i64::try_from(i).unwrap_or(i64::MAX)), v))
                        .collect(),
                    TValue::Nil => Vec::new(),
                    other => {
                        return Err(TemplateError::exec(format!(
                            "range can't iterate over {}",
                            go_value(&other)
                        )))
                    }
                };
                if entries.is_empty() {
                    run(otherwise, scope, out)?;
                }
                let saved_dot = scope.dot.clone();
                for (k, v) in entries {
                    if let Some(kv) = key_var {
                        scope.vars.push((kv.clone(), k));
                    }
                    if let Some(vv) = value_var {
                        scope.vars.push((vv.clone(), v.clone()));
                    }
                    scope.dot = v;
                    let r = run(body, scope, out);
                    scope.vars.truncate(depth);
                    r?;
                }
                scope.dot = saved_dot;
            }
        }
    }
    Ok(())
}

/// Evaluates a pipeline: each command's result becomes the last argument of the next.
fn pipeline(p: &Pipeline, scope: &mut Scope) -> Result<TValue, TemplateError> {
    let mut prev: Option<TValue> = None;
    for c in &p.cmds {
        prev = Some(command(c, scope, prev)?);
    }
    let v = prev.unwrap_or(TValue::Nil);
    if let Some(name) = &p.decl {
        scope.set(name, v.clone());
    }
    Ok(v)
}

fn command(c: &Command, scope: &mut Scope, piped: Option<TValue>) -> Result<TValue, TemplateError> {
    let Some(first) = c.args.first() else {
        return Err(TemplateError::exec("empty command"));
    };
    if let Arg::Func(name) = first {
        let mut args = Vec::with_capacity(c.args.len());
        for a in c.args.iter().skip(1) {
            args.push(operand(a, scope)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        return call(name, args).map_err(|m| TemplateError::exec(format!("error calling {name}: {m}")));
    }
    if c.args.len() > 1 || piped.is_some() {
        return Err(TemplateError::exec(format!(
            "can't give argument to non-function {}",
            describe(first)
        )));
    }
    operand(first, scope)
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Var(v, f) => format!("{v}{}", fields_suffix(f)),
        Arg::Field(f) => fields_suffix(f),
        other => format!("{other:?}"),
    }
}

fn fields_suffix(f: &[String]) -> String {
    let mut s = String::new();
    for x in f {
        s.push('.');
        s.push_str(x);
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

fn operand(a: &Arg, scope: &mut Scope) -> Result<TValue, TemplateError> {
    Ok(match a {
        Arg::Func(name) => {
            call(name, Vec::new()).map_err(|m| TemplateError::exec(format!("error calling {name}: {m}")))?
        }
        Arg::Var(v, fields) => follow(scope.get(v)?, fields)?,
        Arg::Field(fields) => follow(scope.dot.clone(), fields)?,
        Arg::Str(s) => TValue::Str(s.clone()),
        Arg::Int(n) => TValue::Int(*n),
        Arg::Float(x) => TValue::Float(*x),
        Arg::Bool(b) => TValue::Bool(*b),
        Arg::Nil => TValue::Nil,
        Arg::Sub(p) => pipeline(p, scope)?,
    })
}

/// `.a.b` on a value: map lookups; a missing key yields no value (printed `<no value>`).
fn follow(mut v: TValue, fields: &[String]) -> Result<TValue, TemplateError> {
    for f in fields {
        v = match v {
            TValue::Map(m) => m.get(f).cloned().unwrap_or(TValue::Nil),
            TValue::Nil => TValue::Nil,
            other => {
                return Err(TemplateError::exec(format!(
                    "can't evaluate field {f} in type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(v)
}

/// Go's truth: false, 0, nil and empty strings, maps and lists are false.
pub(crate) fn truthy(v: &TValue) -> bool {
    match v {
        TValue::Nil => false,
        TValue::Bool(b) => *b,
        TValue::Int(n) => *n != 0,
        TValue::Float(x) => *x != 0.0,
        TValue::Str(s) => !s.is_empty(),
        TValue::Map(m) => !m.is_empty(),
        TValue::List(l) => !l.is_empty(),
    }
}

/// Labels as a template map of strings.
pub(crate) fn labels_value(labels: &BTreeMap<String, String>) -> TValue {
    let mut m = BTreeMap::new();
    for (k, v) in labels {
        m.insert(k.clone(), TValue::Str(v.clone()));
    }
    TValue::Map(m)
}
