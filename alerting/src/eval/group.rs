//! Evaluating one rule group at one timestamp: rules in order, each rule's output written
//! before the next rule runs, `ALERTS`/`ALERTS_FOR_STATE` and stale markers written,
//! alerts handed to the notifier.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use didban_store::model::{stale_nan, HistogramSample};
use didban_store::promql::{Engine, InstantSample, PromqlError, QueryControl, Value};
use didban_store::{LabelMatcher, Labels, Sample, SeriesSamples};

use super::state::{AlertContext, AlertState, AlertingState};
use super::storage::{LogSource, RuleStorage};
use crate::notify::{Alert, AlertSink};
use crate::rules::{AlertingRule, LogCondition, Rule, RuleGroup};

/// How far back `ALERTS_FOR_STATE` is looked for when restoring (Prometheus'
/// `rules.alert.for-outage-tolerance`).
pub const OUTAGE_TOLERANCE_MS: i64 = 3_600_000;

/// What every evaluation needs: storage, engine, server identity, the notifier.
#[derive(Clone)]
pub struct EvalContext {
    /// Where to read and write.
    pub storage: Arc<dyn RuleStorage>,
    /// The PromQL engine.
    pub engine: Arc<Engine>,
    /// Server external labels (templates; added to notifications).
    pub external_labels: BTreeMap<String, String>,
    /// Base URL for links (generator URLs, templates).
    pub external_url: String,
    /// Receives firing and resolved alerts.
    pub sink: Option<Arc<dyn AlertSink>>,
    /// Least time between two sends of an unchanged firing alert (Prometheus: 1m).
    pub resend_delay: Duration,
    /// Where log rules count records; `None` makes log rules fail.
    pub logs: Option<Arc<dyn LogSource>>,
}

/// Health of a rule after its last evaluation, as the rules API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl Health {
    /// `unknown`, `ok`, `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// One rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct RuleRuntime {
    /// The rule as loaded (shared, so an evaluation holds it without copying).
    pub rule: Arc<Rule>,
    /// Health after the last evaluation.
    pub health: Health,
    /// Error of the last evaluation.
    pub last_error: Option<String>,
    /// Time of the last evaluation (ms).
    pub last_eval_ms: Option<i64>,
    /// Duration of the last evaluation.
    pub eval_duration: Duration,
    /// Alerts (alerting rules only).
    pub alerts: AlertingState,
    /// Series written last time, to write stale markers for the ones that vanish.
    prev_series: HashSet<Labels>,
}

impl RuleRuntime {
    fn new(rule: Rule) -> Self {
        RuleRuntime {
            rule: Arc::new(rule),
            health: Health::Unknown,
            last_error: None,
            last_eval_ms: None,
            eval_duration: Duration::ZERO,
            alerts: AlertingState::default(),
            prev_series: HashSet::new(),
        }
    }
}

/// A group and the state of its rules.
#[derive(Debug, Clone)]
pub struct GroupRuntime {
    /// The group as loaded.
    pub group: RuleGroup,
    /// Effective interval (the group's, or the server default).
    pub interval: Duration,
    /// Rules in order.
    pub rules: Vec<RuleRuntime>,
    /// Timestamp of the last evaluation (ms).
    pub last_eval_ms: Option<i64>,
    /// How long the last evaluation took.
    pub eval_duration: Duration,
    /// Evaluations done.
    pub iterations: u64,
    /// Evaluations skipped because the previous one ran past its slot.
    pub missed_iterations: u64,
    /// Rule evaluations that failed, over all rules, since load.
    pub failures: u64,
}

impl GroupRuntime {
    /// A group not evaluated yet.
    pub fn new(group: RuleGroup, default_interval: Duration) -> Self {
        let interval = group
            .interval
            .unwrap_or(default_interval)
            .max(Duration::from_millis(1));
        let rules = group.rules.iter().cloned().map(RuleRuntime::new).collect();
        GroupRuntime {
            group,
            interval,
            rules,
            last_eval_ms: None,
            eval_duration: Duration::ZERO,
            iterations: 0,
            missed_iterations: 0,
            failures: 0,
        }
    }

    /// `(file, name)`: what identifies a group across reloads.
    pub fn key(&self) -> (String, String) {
        (self.group.file.clone(), self.group.name.clone())
    }

    /// Takes over the alert state of `old` for rules that are unchanged (same kind, name
    /// and expression), so a reload neither re-pages nor restarts `for`.
    pub fn adopt_state(&mut self, old: &GroupRuntime) {
        for r in &mut self.rules {
            for o in &old.rules {
                if o.rule.name() == r.rule.name() && o.rule.expr() == r.rule.expr() {
                    r.alerts = o.alerts.clone();
                    r.prev_series = o.prev_series.clone();
                    r.health = o.health;
                    r.last_error = o.last_error.clone();
                    r.last_eval_ms = o.last_eval_ms;
                    break;
                }
            }
        }
        self.last_eval_ms = old.last_eval_ms;
        self.iterations = old.iterations;
        self.missed_iterations = old.missed_iterations;
        self.failures = old.failures;
    }

    /// Offset of this group's slot inside its interval, from a hash of file and name, so
    /// groups spread over the interval and each keeps its slot across restarts.
    pub fn slot_offset_ms(&self) -> i64 {
        let h = Labels::from_pairs([
            ("file", self.group.file.as_str()),
            ("name", self.group.name.as_str()),
        ])
        .fingerprint();
        let interval = self.interval_ms();
        i64::try_from(h % u64::try_from(interval).unwrap_or(1).max(1)).unwrap_or(0)
    }

    /// The interval in ms (at least 1).
    pub fn interval_ms(&self) -> i64 {
        i64::try_from(self.interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The latest slot time at or before `now_ms`.
    pub fn slot_at_or_before(&self, now_ms: i64) -> i64 {
        let offset = self.slot_offset_ms();
        let adj = now_ms - offset;
        adj - adj.rem_euclid(self.interval_ms()) + offset
    }

    /// Evaluates every rule at `ts`. Errors are recorded per rule; they never stop the
    /// other rules.
    pub async fn eval(&mut self, ts: i64, ctx: &EvalContext) {
        let started = Instant::now();
        let offset = i64::try_from(self.group.query_offset.as_millis()).unwrap_or(0);
        let alert_ctx = AlertContext {
            group_labels: self.group.labels.clone(),
            external_labels: ctx.external_labels.clone(),
            external_url: ctx.external_url.clone(),
            limit: self.group.limit,
        };
        let interval = self.interval;
        for rr in &mut self.rules {
            let rule_started = Instant::now();
            let result = eval_rule(rr, ts, ts - offset, ctx, &alert_ctx, interval, rule_started).await;
            rr.last_eval_ms = Some(ts);
            rr.eval_duration = rule_started.elapsed();
            match result {
                Ok(()) => {
                    rr.health = Health::Ok;
                    rr.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(group = %self.group.name, rule = %rr.rule.name(), error = %e, "rule evaluation failed");
                    rr.health = Health::Err;
                    rr.last_error = Some(e);
                    self.failures += 1;
                }
            }
        }
        self.last_eval_ms = Some(ts);
        self.eval_duration = started.elapsed();
        self.iterations += 1;
        if let Err(e) = ctx.storage.append(self.self_metrics(ts)).await {
            tracing::debug!(group = %self.group.name, error = %e, "cannot write rule group metrics");
        }
    }

    /// The group's own figures as series (Prometheus' `prometheus_rule_group_*` under
    /// `didban_`), written with every evaluation so they can be queried and alerted on.
    fn self_metrics(&self, ts: i64) -> Vec<SeriesSamples> {
        let group = format!("{};{}", self.group.file, self.group.name);
        let figures = [
            ("didban_rule_group_iterations_total", self.iterations as f64),
            (
                "didban_rule_group_iterations_missed_total",
                self.missed_iterations as f64,
            ),
            ("didban_rule_evaluation_failures_total", self.failures as f64),
            (
                "didban_rule_group_last_duration_seconds",
                self.eval_duration.as_secs_f64(),
            ),
            ("didban_rule_group_interval_seconds", self.interval.as_secs_f64()),
            ("didban_rule_group_rules", self.rules.len() as f64),
        ];
        let mut out = Vec::with_capacity(figures.len());
        for (name, v) in figures {
            out.push(SeriesSamples {
                labels: Labels::from_pairs([("__name__", name), ("rule_group", group.as_str())]),
                samples: vec![Sample::new(ts, v)],
                histograms: Vec::new(),
            });
        }
        out
    }
}

/// Runs the query at `t` on a blocking thread, stopping it `interval` after `started` (the
/// rule's start); a scalar becomes one unlabelled sample.
///
/// Rule queries do not take a slot of the query API's limiter: they are the monitor's own
/// work, and a burst of dashboard queries filling the queue must not make alerts miss their
/// evaluations. What bounds them instead is this deadline (and the engine's sample limit):
/// one rule can take at most one interval, so a heavy rule cannot stall its group for ever.
async fn query(
    ctx: &EvalContext,
    expr: &str,
    t: i64,
    started: Instant,
    interval: Duration,
) -> Result<Vec<InstantSample>, String> {
    let storage = ctx.storage.clone();
    let engine = ctx.engine.clone();
    let expr = expr.to_string();
    let ctl = QueryControl {
        deadline: started.checked_add(interval),
        cancel: None,
    };
    let value =
        tokio::task::spawn_blocking(move || engine.instant_query_with(storage.queryable(), &expr, t, &ctl))
            .await
            .map_err(|e| format!("query task failed: {e}"))?
            .map_err(|e| match e {
                PromqlError::Timeout => {
                    format!("{e} (a rule may take at most the group interval, {interval:?})")
                }
                e => e.to_string(),
            })?
            .value;
    match value {
        Value::Vector(v) => Ok(v),
        Value::Scalar { t_ms, v } => Ok(vec![InstantSample {
            labels: Labels::default(),
            t_ms,
            v,
            h: None,
        }]),
        other => Err(format!(
            "rule result is not a vector or scalar: {}",
            match other {
                Value::Matrix(_) => "range vector",
                _ => "string",
            }
        )),
    }
}

/// A log rule's condition at `t`: one unlabelled sample with the count when it is over the
/// threshold, none otherwise.
async fn count_logs(ctx: &EvalContext, cond: &LogCondition, t: i64) -> Result<Vec<InstantSample>, String> {
    let Some(logs) = ctx.logs.clone() else {
        return Err("log rules need the log store, which is not available".into());
    };
    let query = cond.query.clone();
    let start = t - i64::try_from(cond.window.as_millis()).unwrap_or(i64::MAX);
    let by = cond.by.clone();
    let counts = tokio::task::spawn_blocking(move || match by {
        Some(field) => logs.count_by(&query, &field, start, t, 1000),
        None => logs.count(&query, start, t).map(|n| vec![(String::new(), n)]),
    })
    .await
    .map_err(|e| format!("log count task failed: {e}"))?
    .map_err(|e| format!("counting logs for {:?}: {e}", cond.query))?;
    let label = cond.by_label();
    let mut out = Vec::new();
    for (value, n) in counts {
        let v = n as f64;
        if v <= cond.threshold {
            continue;
        }
        let labels = match &label {
            Some(name) => Labels::from_pairs([(name.as_str(), value.as_str())]),
            None => Labels::default(),
        };
        out.push(InstantSample {
            labels,
            t_ms: t,
            v,
            h: None,
        });
    }
    Ok(out)
}

async fn eval_rule(
    rr: &mut RuleRuntime,
    ts: i64,
    query_ts: i64,
    ctx: &EvalContext,
    actx: &AlertContext,
    interval: Duration,
    started: Instant,
) -> Result<(), String> {
    let samples = match rr.rule.as_ref() {
        Rule::Alerting(AlertingRule { logs: Some(cond), .. }) => count_logs(ctx, cond, query_ts).await?,
        _ => query(ctx, rr.rule.expr(), query_ts, started, interval).await?,
    };
    let rule = rr.rule.clone();
    let mut batch = match rule.as_ref() {
        Rule::Recording(r) => {
            recorded_series(&r.name, &actx.group_labels, &r.labels, &samples, ts, actx.limit)?
        }
        Rule::Alerting(a) => {
            let seen = rr
                .alerts
                .apply_results(a, actx, ts, &samples)
                .map_err(|e| e.to_string())?;
            if !rr.alerts.restored {
                let storage = ctx.storage.clone();
                rr.alerts
                    .restore(a, ts, |labels| last_for_state(storage.as_ref(), labels, ts));
            }
            let out = rr
                .alerts
                .transition(a, actx, ts, &seen)
                .map_err(|e| e.to_string())?;
            send_alerts(rr, a, ts, ctx, interval);
            out
        }
    };
    // A failed evaluation returned above: its series are neither refreshed nor marked stale.
    let mut now_series = HashSet::new();
    for s in &batch {
        now_series.insert(s.labels.clone());
    }
    for old in &rr.prev_series {
        if !now_series.contains(old) {
            batch.push(SeriesSamples {
                labels: old.clone(),
                samples: vec![Sample::new(ts, stale_nan())],
                histograms: Vec::new(),
            });
        }
    }
    rr.prev_series = now_series;
    if !batch.is_empty() {
        ctx.storage
            .append(batch)
            .await
            .map_err(|e| format!("writing rule output: {e}"))?;
    }
    Ok(())
}

/// The series a recording rule writes for `samples`.
fn recorded_series(
    name: &str,
    group_labels: &BTreeMap<String, String>,
    rule_labels: &BTreeMap<String, String>,
    samples: &[InstantSample],
    ts: i64,
    limit: usize,
) -> Result<Vec<SeriesSamples>, String> {
    if limit > 0 && samples.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", samples.len()));
    }
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::new();
    for s in samples {
        let mut labels = s.labels.with("__name__", name);
        for (k, v) in group_labels {
            labels = labels.with(k, v);
        }
        for (k, v) in rule_labels {
            labels = labels.with(k, v);
        }
        if !seen.insert(labels.clone()) {
            return Err(format!(
                "vector contains metrics with the same labelset after applying rule labels: {labels}"
            ));
        }
        // A histogram result is recorded as a histogram sample (stores without native
        // histograms drop it).
        let (samples, histograms) = match &s.h {
            Some(h) => (
                Vec::new(),
                vec![HistogramSample {
                    timestamp_ms: ts,
                    h: h.clone(),
                }],
            ),
            None => (vec![Sample::new(ts, s.v)], Vec::new()),
        };
        out.push(SeriesSamples {
            labels,
            samples,
            histograms,
        });
    }
    Ok(out)
}

/// The newest `ALERTS_FOR_STATE` sample of an alert within the outage tolerance:
/// `(sample time ms, value)`.
fn last_for_state(storage: &dyn RuleStorage, labels: &Labels, ts: i64) -> Option<(i64, f64)> {
    let mut matchers = vec![LabelMatcher::equal("__name__", "ALERTS_FOR_STATE")];
    for l in labels.iter() {
        matchers.push(LabelMatcher::equal(l.name, l.value));
    }
    let series = storage
        .queryable()
        .select(&matchers, ts - OUTAGE_TOLERANCE_MS, ts)
        .ok()?;
    let mut best: Option<(i64, f64)> = None;
    for s in series {
        if s.labels.len() != labels.len() + 1 {
            continue;
        }
        for p in s.samples.iter().rev() {
            if p.value.is_finite() {
                if best.is_none_or(|(t, _)| p.timestamp_ms > t) {
                    best = Some((p.timestamp_ms, p.value));
                }
                break;
            }
        }
    }
    best
}

/// Hands firing alerts (at most once per resend delay) and newly resolved alerts to the
/// notifier, as Prometheus' `sendAlerts` does.
fn send_alerts(rr: &mut RuleRuntime, rule: &AlertingRule, ts: i64, ctx: &EvalContext, interval: Duration) {
    let Some(sink) = &ctx.sink else {
        return;
    };
    let resend = i64::try_from(ctx.resend_delay.as_millis()).unwrap_or(60_000);
    let delta = resend.max(i64::try_from(interval.as_millis()).unwrap_or(0));
    let generator_url = match &rule.logs {
        Some(cond) => format!(
            "{}/logs?q={}",
            ctx.external_url.trim_end_matches('/'),
            url_encode(&cond.query)
        ),
        None => generator_url(&ctx.external_url, &rule.expr),
    };
    let mut out = Vec::new();
    for a in rr.alerts.active.values_mut() {
        if a.state == AlertState::Pending {
            continue;
        }
        let resolved_since_sent = match (a.resolved_at_ms, a.last_sent_ms) {
            (Some(r), Some(s)) => r > s,
            (Some(_), None) => true,
            _ => false,
        };
        let due = a.last_sent_ms.is_none_or(|s| s + resend < ts);
        if !(resolved_since_sent || due) {
            continue;
        }
        if a.state == AlertState::Inactive && a.last_sent_ms.is_none() && a.fired_at_ms.is_none() {
            continue;
        }
        a.last_sent_ms = Some(ts);
        let mut labels = a.labels.clone();
        for (k, v) in &ctx.external_labels {
            if labels.get(k).is_none() {
                labels = labels.with(k, v);
            }
        }
        out.push(Alert {
            labels,
            annotations: a.annotations.clone(),
            starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
            ends_at_ms: a.resolved_at_ms.unwrap_or(ts + 4 * delta),
            generator_url: generator_url.clone(),
            value: a.value,
        });
    }
    if !out.is_empty() {
        sink.send(out, ts);
    }
}

/// Percent-encodes everything but unreserved characters.
fn url_encode(text: &str) -> String {
    let mut enc = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

/// Link to the expression in the UI's Explore page, table view (Prometheus links to its
/// `/graph?g0.expr=…`; ours is `/explore?q=…`).
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/explore?q={}&view=table",
        external_url.trim_end_matches('/'),
        url_encode(expr)
    )
}
