//! A parsed PromQL expression as the JSON tree Prometheus 3's `/api/v1/parse_query`
//! answers (the shape its UI's tree view reads): one object per node with a `type`
//! (`vectorSelector`, `matrixSelector`, `subquery`, `call`, `aggregation`, `binaryExpr`,
//! `unaryExpr`, `parenExpr`, `numberLiteral`, `stringLiteral`), durations and offsets in
//! milliseconds, `@` as `timestamp` (ms) or `startOrEnd`.

use std::time::{Duration, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AtModifier, BinModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use serde_json::{json, Map, Value as Json};

/// The JSON tree of `expr`.
pub fn ast_json(expr: &Expr) -> Json {
    match expr {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
                Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
                None => (Vec::new(), false),
            };
            json!({
                "type": "aggregation",
                "op": a.op.to_string(),
                "expr": ast_json(&a.expr),
                "param": a.param.as_deref().map(ast_json),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": ast_json(&u.expr)}),
        Expr::Binary(b) => json!({
            "type": "binaryExpr",
            "op": b.op.to_string(),
            "lhs": ast_json(&b.lhs),
            "rhs": ast_json(&b.rhs),
            "matching": matching_json(&b.lhs, &b.rhs, b.modifier.as_ref()),
            "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
        }),
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": ast_json(&p.expr)}),
        Expr::Subquery(s) => {
            let mut node = json!({
                "type": "subquery",
                "expr": ast_json(&s.expr),
                "range": millis(s.range),
                "offset": offset_ms(s.offset.as_ref()),
                "step": s.step.map(millis).unwrap_or(0),
            });
            put_at(&mut node, s.at.as_ref());
            node
        }
        Expr::NumberLiteral(n) => json!({"type": "numberLiteral", "val": number(n.val)}),
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::VectorSelector(vs) => selector_json("vectorSelector", vs, None),
        Expr::MatrixSelector(ms) => selector_json("matrixSelector", &ms.vs, Some(ms.range)),
        Expr::Call(c) => {
            let args: Vec<Json> = c.args.args.iter().map(|a| ast_json(a)).collect();
            let arg_types: Vec<String> = c.func.arg_types.iter().map(|t| t.to_string()).collect();
            json!({
                "type": "call",
                "func": {
                    "name": c.func.name,
                    "argTypes": arg_types,
                    "variadic": c.func.variadic,
                    "returnType": c.func.return_type.to_string(),
                },
                "args": args,
            })
        }
        // Never produced by the parser; only programs extending the AST build these.
        Expr::Extension(_) => json!({"type": "extension"}),
    }
}

/// Prometheus' vector matching object (`card`, `on`/`ignoring` labels, `group_*` labels),
/// present when both sides are instant vectors, `null` otherwise.
fn matching_json(lhs: &Expr, rhs: &Expr, m: Option<&BinModifier>) -> Json {
    if lhs.value_type() != ValueType::Vector || rhs.value_type() != ValueType::Vector {
        return Json::Null;
    }
    let default = BinModifier::default();
    let m = m.unwrap_or(&default);
    let (card, include) = match &m.card {
        VectorMatchCardinality::OneToOne => ("one-to-one", Vec::new()),
        VectorMatchCardinality::ManyToOne(l) => ("many-to-one", l.labels.clone()),
        VectorMatchCardinality::OneToMany(l) => ("one-to-many", l.labels.clone()),
        VectorMatchCardinality::ManyToMany => ("many-to-many", Vec::new()),
    };
    let (labels, on) = match &m.matching {
        Some(LabelModifier::Include(l)) => (l.labels.clone(), true),
        Some(LabelModifier::Exclude(l)) => (l.labels.clone(), false),
        None => (Vec::new(), false),
    };
    json!({
        "card": card,
        "labels": labels,
        "on": on,
        "include": include,
        "fillValues": {"lhs": m.fill_values.lhs, "rhs": m.fill_values.rhs},
    })
}

fn selector_json(kind: &str, vs: &VectorSelector, range: Option<Duration>) -> Json {
    let mut node = Map::new();
    node.insert("type".into(), json!(kind));
    node.insert("name".into(), json!(vs.name.clone().unwrap_or_default()));
    if let Some(range) = range {
        node.insert("range".into(), json!(millis(range)));
    }
    node.insert("offset".into(), json!(offset_ms(vs.offset.as_ref())));
    node.insert("matchers".into(), matchers_json(vs));
    let mut node = Json::Object(node);
    put_at(&mut node, vs.at.as_ref());
    node
}

/// The selector's matchers, then the metric name as a `__name__` matcher, in the order
/// Prometheus' parser lists them; `or` alternatives (`{a="1" or b="2"}`) follow the first
/// set.
fn matchers_json(vs: &VectorSelector) -> Json {
    let Matchers {
        matchers,
        or_matchers,
    } = &vs.matchers;
    let mut out: Vec<Json> = Vec::new();
    for m in matchers.iter().chain(or_matchers.iter().flatten()) {
        out.push(matcher_json(m));
    }
    let has_name = matchers.iter().any(|m| m.name == "__name__");
    if let (Some(name), false) = (&vs.name, has_name) {
        out.push(json!({"type": "=", "name": "__name__", "value": name}));
    }
    Json::Array(out)
}

fn matcher_json(m: &Matcher) -> Json {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    };
    json!({"type": op, "name": m.name, "value": m.value})
}

fn put_at(node: &mut Json, at: Option<&AtModifier>) {
    let (timestamp, start_or_end) = match at {
        None => (Json::Null, Json::Null),
        Some(AtModifier::Start) => (Json::Null, json!("start")),
        Some(AtModifier::End) => (Json::Null, json!("end")),
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
                Err(e) => -i128::try_from(e.duration().as_millis()).unwrap_or(i128::MAX),
            };
            (json!(ms), Json::Null)
        }
    };
    if let Json::Object(map) = node {
        map.insert("timestamp".into(), timestamp);
        map.insert("startOrEnd".into(), start_or_end);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn offset_ms(offset: Option<&Offset>) -> i64 {
    let ms = |d: &Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

/// A number as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: shortest digits, no
/// exponent; `NaN`, `+Inf`, `-Inf` for the special values.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree(q: &str) -> Json {
        ast_json(&promql_parser::parser::parse(q).unwrap())
    }

    #[test]
    fn selectors_carry_the_name_matcher_offset_and_at() {
        let t = tree(r#"rate(http_requests_total{code=~"5.."}[5m] offset 1m @ 100)"#);
        assert_eq!(t["type"], "call");
        assert_eq!(t["func"]["name"], "rate");
        assert_eq!(t["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(t["func"]["returnType"], "vector");
        let m = &t["args"][0];
        assert_eq!(m["type"], "matrixSelector");
        assert_eq!(m["name"], "http_requests_total");
        assert_eq!(m["range"], 300_000);
        assert_eq!(m["offset"], 60_000);
        assert_eq!(m["timestamp"], 100_000);
        assert_eq!(m["startOrEnd"], Json::Null);
        assert_eq!(
            m["matchers"],
            json!([
                {"type": "=~", "name": "code", "value": "5.."},
                {"type": "=", "name": "__name__", "value": "http_requests_total"},
            ])
        );
    }

    #[test]
    fn aggregations_binaries_and_literals() {
        let t = tree(r#"sum without (pod) (a) / on (job) group_left (team) b > bool 0.5"#);
        assert_eq!(t["type"], "binaryExpr");
        assert_eq!(t["op"], ">");
        assert_eq!(t["bool"], true);
        assert_eq!(t["rhs"], json!({"type": "numberLiteral", "val": "0.5"}));
        let div = &t["lhs"];
        assert_eq!(div["op"], "/");
        assert_eq!(div["matching"]["card"], "many-to-one");
        assert_eq!(div["matching"]["on"], true);
        assert_eq!(div["matching"]["labels"], json!(["job"]));
        assert_eq!(div["matching"]["include"], json!(["team"]));
        let sum = &div["lhs"];
        assert_eq!(sum["type"], "aggregation");
        assert_eq!(sum["op"], "sum");
        assert_eq!(sum["grouping"], json!(["pod"]));
        assert_eq!(sum["without"], true);
        assert_eq!(sum["param"], Json::Null);
        // Two vectors always match (one-to-one by default); a scalar side does not.
        assert_eq!(tree("a + b")["matching"]["card"], "one-to-one");
        assert_eq!(tree("a + b")["matching"]["on"], false);
        assert_eq!(tree("a and b")["matching"]["card"], "many-to-many");
        assert_eq!(tree("a * 2")["matching"], Json::Null);
    }

    #[test]
    fn subqueries_parens_unary_and_strings() {
        let t = tree(r#"-(max_over_time(up[1h:5m] @ end()))"#);
        assert_eq!(t["type"], "unaryExpr");
        assert_eq!(t["expr"]["type"], "parenExpr");
        let sq = &t["expr"]["expr"]["args"][0];
        assert_eq!(sq["type"], "subquery");
        assert_eq!(sq["range"], 3_600_000);
        assert_eq!(sq["step"], 300_000);
        assert_eq!(sq["startOrEnd"], "end");
        assert_eq!(
            tree(r#"label_replace(up, "a", "$1", "b", "(.*)")"#)["args"][1],
            json!({"type": "stringLiteral", "val": "a"})
        );
        assert_eq!(tree("count_values(\"v\", up)")["param"]["type"], "stringLiteral");
        assert_eq!(number(1e21), "1000000000000000000000");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    }
}
