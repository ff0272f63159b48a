//! The alert state machine of one alerting rule, with Prometheus' semantics: a sample of the
//! expression makes an alert pending; it fires once it has been active for `for`; when the
//! sample disappears it stays firing for `keep_firing_for`, then resolves and is kept for 15
//! minutes so the resolution is notified; a pending alert that disappears is dropped.

use std::collections::{BTreeMap, HashMap};

use didban_store::promql::InstantSample;
use didban_store::{Label, Labels, Sample, SeriesSamples};

use crate::rules::template::TemplateData;
use crate::rules::AlertingRule;

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// State of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Resolved; kept for a while to notify the resolution.
    Inactive,
    /// Active, but not for `for` yet.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name Prometheus uses (`inactive`, `pending`, `firing`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// Final labels: sample labels, group labels, rule labels, `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Current state.
    pub state: AlertState,
    /// Value of the sample at the last evaluation that saw it.
    pub value: f64,
    /// When the alert became active (ms).
    pub active_at_ms: i64,
    /// When it started firing (ms).
    pub fired_at_ms: Option<i64>,
    /// When it resolved (ms).
    pub resolved_at_ms: Option<i64>,
    /// When the condition stopped while `keep_firing_for` holds it firing (ms).
    pub keep_firing_since_ms: Option<i64>,
    /// Last time it was handed to the notifier (ms).
    pub last_sent_ms: Option<i64>,
}

/// What the rule knows between evaluations.
#[derive(Debug, Clone, Default)]
pub struct AlertingState {
    /// Alerts by label fingerprint.
    pub active: HashMap<u64, ActiveAlert>,
    /// False until the state has been restored from `ALERTS_FOR_STATE` after a start.
    pub restored: bool,
}

/// Context an evaluation needs besides the query result.
#[derive(Debug, Clone, Default)]
pub struct AlertContext {
    /// The group's `labels:`.
    pub group_labels: BTreeMap<String, String>,
    /// Server external labels (for templates).
    pub external_labels: BTreeMap<String, String>,
    /// Server external URL (for templates).
    pub external_url: String,
    /// Most alerts the rule may have (0 = no limit).
    pub limit: usize,
}

/// Why an evaluation of an alerting rule failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertEvalError {
    /// Two samples ended with the same labels.
    #[error("vector contains metrics with the same labelset after applying alert labels: {0}")]
    DuplicateLabels(String),
    /// More alerts than the group's `limit`.
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit {
        /// The limit.
        limit: usize,
        /// Alerts the rule would have had.
        count: usize,
    },
}

impl AlertingState {
    /// Step 1 of an evaluation at `ts`: turn the query result into alerts (new ones
    /// pending), expanding labels and annotations. Template errors do not stop the rule:
    /// the text becomes the error, as in Prometheus. Returns the fingerprints seen.
    pub fn apply_results(
        &mut self,
        rule: &AlertingRule,
        ctx: &AlertContext,
        ts: i64,
        samples: &[InstantSample],
    ) -> Result<Vec<u64>, AlertEvalError> {
        let mut fresh: HashMap<u64, ActiveAlert> = HashMap::new();
        let mut seen = Vec::new();
        for s in samples {
            let mut data = TemplateData {
                labels: BTreeMap::new(),
                value: s.v,
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.clone(),
            };
            for l in s.labels.iter() {
                data.labels.insert(l.name.to_string(), l.value.to_string());
            }
            let mut labels: Vec<Label> = Vec::new();
            for l in s.labels.iter() {
                if l.name != "__name__" {
                    labels.push(l.to_label());
                }
            }
            let mut extra: BTreeMap<String, String> = ctx.group_labels.clone();
            for (name, t) in &rule.labels {
                let v = t
                    .expand(&data)
                    .unwrap_or_else(|e| format!("<error expanding template: {e}>"));
                extra.insert(name.clone(), v);
            }
            extra.insert("alertname".to_string(), rule.name.clone());
            let mut pairs: Vec<(String, String)> = Vec::new();
            for l in labels {
                if !extra.contains_key(&l.name) {
                    pairs.push((l.name, l.value));
                }
            }
            pairs.extend(extra);
            let final_labels = Labels::from_pairs(pairs);
            let mut annotations = BTreeMap::new();
            for (name, t) in &rule.annotations {
                let v = t
                    .expand(&data)
                    .unwrap_or_else(|e| format!("<error expanding template: {e}>"));
                annotations.insert(name.clone(), v);
            }
            let fp = final_labels.fingerprint();
            if fresh.contains_key(&fp) {
                return Err(AlertEvalError::DuplicateLabels(final_labels.to_string()));
            }
            seen.push(fp);
            fresh.insert(
                fp,
                ActiveAlert {
                    labels: final_labels,
                    annotations,
                    state: AlertState::Pending,
                    value: s.v,
                    active_at_ms: ts,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    keep_firing_since_ms: None,
                    last_sent_ms: None,
                },
            );
        }
        for (fp, a) in fresh {
            match self.active.get_mut(&fp) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(fp, a);
                }
            }
        }
        Ok(seen)
    }

    /// Step 2 (after a restart only): set `active_at` of pending alerts from what
    /// `lookup(labels)` finds in `ALERTS_FOR_STATE` — `(sample time ms, active_at seconds)`
    /// — so `for` is not restarted. An alert that had already fired keeps its old
    /// `active_at` (and so fires at once, without waiting again); one that was still
    /// pending does not count the downtime.
    pub fn restore(&mut self, rule: &AlertingRule, ts: i64, lookup: impl Fn(&Labels) -> Option<(i64, f64)>) {
        self.restored = true;
        if rule.for_.is_zero() {
            return;
        }
        let hold = i64::try_from(rule.for_.as_millis()).unwrap_or(i64::MAX);
        for a in self.active.values_mut() {
            if a.state != AlertState::Pending {
                continue;
            }
            let Some((down_at, active_s)) = lookup(&a.labels) else {
                continue;
            };
            if !active_s.is_finite() {
                continue;
            }
            let restored = (active_s * 1000.0) as i64;
            let spent = down_at - restored;
            a.active_at_ms = if spent >= hold {
                restored
            } else {
                restored + (ts - down_at).max(0)
            };
        }
    }

    /// Step 3: state transitions at `ts` for the fingerprints `seen` this time; returns
    /// the `ALERTS` and `ALERTS_FOR_STATE` samples to write.
    pub fn transition(
        &mut self,
        rule: &AlertingRule,
        ctx: &AlertContext,
        ts: i64,
        seen: &[u64],
    ) -> Result<Vec<SeriesSamples>, AlertEvalError> {
        let hold = i64::try_from(rule.for_.as_millis()).unwrap_or(i64::MAX);
        let keep = i64::try_from(rule.keep_firing_for.as_millis()).unwrap_or(i64::MAX);
        let mut remove = Vec::new();
        let mut active_count = 0usize;
        for (fp, a) in self.active.iter_mut() {
            if !seen.contains(fp) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    keep_firing = ts - since < keep;
                }
                let expired = a.resolved_at_ms.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS);
                if a.state == AlertState::Pending || expired {
                    remove.push(*fp);
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            active_count += 1;
            if a.state == AlertState::Pending && ts - a.active_at_ms >= hold {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(ts);
            }
        }
        for fp in remove {
            self.active.remove(&fp);
        }
        if ctx.limit > 0 && active_count > ctx.limit {
            self.active.clear();
            return Err(AlertEvalError::Limit {
                limit: ctx.limit,
                count: active_count,
            });
        }
        let mut out = Vec::new();
        for a in self.active.values() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let alerts = a
                .labels
                .with("__name__", "ALERTS")
                .with("alertstate", a.state.as_str());
            out.push(SeriesSamples {
                labels: alerts,
                samples: vec![Sample::new(ts, 1.0)],
                histograms: Vec::new(),
            });
            out.push(SeriesSamples {
                labels: a.labels.with("__name__", "ALERTS_FOR_STATE"),
                samples: vec![Sample::new(ts, (a.active_at_ms / 1000) as f64)],
                histograms: Vec::new(),
            });
        }
        out.sort_by(|x, y| x.labels.cmp(&y.labels));
        Ok(out)
    }

    /// The rule's overall state: firing if any alert fires, else pending if any is
    /// pending, else inactive.
    pub fn rule_state(&self) -> AlertState {
        let mut state = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => state = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        state
    }
}
