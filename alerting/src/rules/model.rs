//! The rule model: groups of alerting and recording rules, and log rules' conditions, as
//! loaded from rule files.

use std::collections::BTreeMap;
use std::time::Duration;

use super::duration::format_prom_duration;
use super::template::Template;

/// A group of rules evaluated together, in order, at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// The group's name, unique within its file.
    pub name: String,
    /// The file it came from (as given when loading).
    pub file: String,
    /// Where the group comes from, for the rules API and the Rules page: `file:<path>` for
    /// a rule file, `pack:<name>` for a built-in (or `packs_dir`) pack, `config:<key>` for
    /// groups made from the config (threshold overrides).
    pub origin: String,
    /// Evaluation interval; `None` means the server's default.
    pub interval: Option<Duration>,
    /// How far back in time the group evaluates (`query_offset`).
    pub query_offset: Duration,
    /// Most alerts (or recorded series) a rule may produce; 0 = no limit.
    pub limit: usize,
    /// Labels added to every rule's output (rule labels win).
    pub labels: BTreeMap<String, String>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// An alerting or recording rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `alert:`.
    Alerting(AlertingRule),
    /// `record:`.
    Recording(RecordingRule),
}

impl Rule {
    /// The alert name or recorded metric name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Alerting(a) => &a.name,
            Rule::Recording(r) => &r.name,
        }
    }

    /// The PromQL expression.
    pub fn expr(&self) -> &str {
        match self {
            Rule::Alerting(a) => &a.expr,
            Rule::Recording(r) => &r.expr,
        }
    }
}

/// A log rule's condition (Didban's extension of the rule format): the number of log
/// records matching `query` over the last `window`, compared with `threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCondition {
    /// Log search query (the log store's query syntax).
    pub query: String,
    /// How far back records are counted.
    pub window: Duration,
    /// The alert is active while the count is greater than this.
    pub threshold: f64,
    /// Count per value of this record field (`service`, `attributes.<key>`, …): one alert
    /// per value over the threshold, labelled [`LogCondition::by_label`].
    pub by: Option<String>,
    /// Name of the label for `by` values (default: see [`LogCondition::by_label`]).
    pub label: Option<String>,
}

impl LogCondition {
    /// How the condition is shown where a PromQL expression would be (rules API, links).
    pub fn display(&self) -> String {
        let by = match &self.by {
            Some(f) => format!(" by ({f})"),
            None => String::new(),
        };
        format!(
            "count_logs({:?}[{}]){by} > {}",
            self.query,
            format_prom_duration(self.window),
            self.threshold
        )
    }

    /// The label carrying the value of `by`: `label` when set, else the field's last dotted
    /// segment, with characters that
    /// are not allowed in label names replaced by `_` (`attributes.client.address` →
    /// `address`).
    pub fn by_label(&self) -> Option<String> {
        let field = self.by.as_deref()?;
        if let Some(l) = &self.label {
            return Some(l.clone());
        }
        let last = field.rsplit('.').next().unwrap_or(field);
        let mut out = String::new();
        for c in last.chars() {
            out.push(if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            });
        }
        if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert(0, '_');
        }
        Some(out)
    }
}

/// An alerting rule: every sample of `expr` (or the log count of `logs`) is an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// `alert:`, the `alertname` label.
    pub name: String,
    /// The condition; for log rules, [`LogCondition::display`].
    pub expr: String,
    /// Set for log rules, which count log records instead of evaluating PromQL.
    pub logs: Option<LogCondition>,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// How long the alert keeps firing after the condition stops.
    pub keep_firing_for: Duration,
    /// Extra labels (templated).
    pub labels: BTreeMap<String, Template>,
    /// Annotations (templated).
    pub annotations: BTreeMap<String, Template>,
}

/// A recording rule: `expr`'s result is written as metric `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// `record:`, the new metric name.
    pub name: String,
    /// The expression recorded.
    pub expr: String,
    /// Labels set on every recorded series.
    pub labels: BTreeMap<String, String>,
}
