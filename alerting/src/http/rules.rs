//! `GET /api/v1/rules` and `GET /api/v1/alerts` in Prometheus 2.x's JSON shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::envelope::{bad_data, success};
use crate::eval::{ActiveAlert, AlertState, RuleRuntime};
use crate::notify::rfc3339;
use crate::rules::Rule;
use crate::service::Alerting;

/// Prometheus prints alert values with `strconv.FormatFloat(v, 'e', -1, 64)`.
pub(crate) fn value_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn time_or_zero(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn alert_json(a: &ActiveAlert) -> Value {
    let mut labels = Map::new();
    for l in a.labels.iter() {
        labels.insert(l.name.to_string(), Value::String(l.value.to_string()));
    }
    let mut o = json!({
        "labels": labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at_ms),
        "value": value_e(a.value),
    });
    if let (Some(since), Some(obj)) = (a.keep_firing_since_ms, o.as_object_mut()) {
        obj.insert("keepFiringSince".into(), Value::String(rfc3339(since)));
    }
    o
}

/// Pending and firing alerts of a rule, sorted by labels.
fn active_alerts(r: &RuleRuntime) -> Vec<&ActiveAlert> {
    let mut out: Vec<&ActiveAlert> = Vec::new();
    for a in r.alerts.active.values() {
        if a.state != AlertState::Inactive {
            out.push(a);
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn rule_json(r: &RuleRuntime, with_alerts: bool, origin: &str) -> Value {
    let mut o = match r.rule.as_ref() {
        Rule::Alerting(a) => {
            let mut labels = BTreeMap::new();
            for (k, t) in &a.labels {
                labels.insert(k.clone(), t.source().to_string());
            }
            let mut annotations = BTreeMap::new();
            for (k, t) in &a.annotations {
                annotations.insert(k.clone(), t.source().to_string());
            }
            let alerts: Vec<Value> = if with_alerts {
                active_alerts(r).into_iter().map(alert_json).collect()
            } else {
                Vec::new()
            };
            json!({
                "state": r.alerts.rule_state().as_str(),
                "name": a.name,
                "query": a.expr,
                "duration": a.for_.as_secs_f64(),
                "keepFiringFor": a.keep_firing_for.as_secs_f64(),
                "labels": labels,
                "annotations": annotations,
                "alerts": alerts,
                "type": "alerting",
            })
        }
        Rule::Recording(rec) => json!({
            "name": rec.name,
            "query": rec.expr,
            "labels": rec.labels,
            "type": "recording",
        }),
    };
    if let Some(obj) = o.as_object_mut() {
        obj.insert("health".into(), Value::String(r.health.as_str().into()));
        obj.insert("origin".into(), Value::String(origin.into()));
        if let Some(e) = &r.last_error {
            obj.insert("lastError".into(), Value::String(e.clone()));
        }
        obj.insert("evaluationTime".into(), json!(r.eval_duration.as_secs_f64()));
        obj.insert(
            "lastEvaluation".into(),
            Value::String(time_or_zero(r.last_eval_ms)),
        );
    }
    o
}

/// Query parameters, with repeated `name[]` keys.
fn params(raw: Option<String>) -> Result<Vec<(String, String)>, String> {
    match raw {
        None => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str(&q).map_err(|e| format!("invalid query string: {e}")),
    }
}

fn values(p: &[(String, String)], key: &str) -> Vec<String> {
    p.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

pub(super) async fn rules(State(a): State<Arc<Alerting>>, RawQuery(raw): RawQuery) -> Response {
    let p = match params(raw) {
        Ok(p) => p,
        Err(e) => return bad_data(e),
    };
    let kind = values(&p, "type").pop();
    let (want_alert, want_record) = match kind.as_deref() {
        None | Some("") => (true, true),
        Some("alert") => (true, false),
        Some("record") => (false, true),
        Some(other) => return bad_data(format!("unsupported type {other:?}: must be alert or record")),
    };
    let names = values(&p, "rule_name[]");
    let groups_f = values(&p, "rule_group[]");
    let files = values(&p, "file[]");
    let exclude_alerts = values(&p, "exclude_alerts").pop().as_deref() == Some("true");
    let mut out = Vec::new();
    for g in a.manager.groups() {
        let g = g.lock().await;
        if !groups_f.is_empty() && !groups_f.contains(&g.group.name) {
            continue;
        }
        if !files.is_empty() && !files.contains(&g.group.file) {
            continue;
        }
        let mut rules = Vec::new();
        for r in &g.rules {
            let is_alert = matches!(r.rule.as_ref(), Rule::Alerting(_));
            if (is_alert && !want_alert) || (!is_alert && !want_record) {
                continue;
            }
            if !names.is_empty() && !names.iter().any(|n| n == r.rule.name()) {
                continue;
            }
            rules.push(rule_json(r, !exclude_alerts, &g.group.origin));
        }
        if rules.is_empty() && (!names.is_empty() || kind.is_some()) {
            continue;
        }
        out.push(json!({
            "name": g.group.name,
            "file": g.group.file,
            "origin": g.group.origin,
            "rules": rules,
            "interval": g.interval.as_secs_f64(),
            "limit": g.group.limit,
            "evaluationTime": g.eval_duration.as_secs_f64(),
            "lastEvaluation": time_or_zero(g.last_eval_ms),
        }));
    }
    success(json!({ "groups": out }))
}

pub(super) async fn alerts(State(a): State<Arc<Alerting>>) -> Response {
    let mut out = Vec::new();
    for g in a.manager.groups() {
        let g = g.lock().await;
        for r in &g.rules {
            for al in active_alerts(r) {
                out.push(alert_json(al));
            }
        }
    }
    success(json!({ "alerts": out }))
}
