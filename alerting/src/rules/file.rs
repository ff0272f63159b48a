//! Prometheus rule files: YAML parsing with unknown fields refused, validation with the
//! file, line and reason of every problem (as promtool reports them), and loading a
//! directory of files.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use didban_store::model::{is_valid_label_name, is_valid_metric_name};
use didban_store::promql::{Engine, EngineOptions, MemStorage, PromqlError};
use serde::Deserialize;

use super::duration::parse_prom_duration;
use super::model::{AlertingRule, LogCondition, RecordingRule, Rule, RuleGroup};
use super::template::Template;

/// One problem in a rule file: where it is and why it is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {}{reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), context(group, rule))]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The group's name, when the problem is inside a group.
    pub group: Option<String>,
    /// The rule's name (alert or record), when the problem is inside a rule.
    pub rule: Option<String>,
    /// What is wrong, naming the bad value.
    pub reason: String,
}

fn context(group: &Option<String>, rule: &Option<String>) -> String {
    match (group, rule) {
        (Some(g), Some(r)) => format!("group {g:?}, rule {r:?}: "),
        (Some(g), None) => format!("group {g:?}: "),
        _ => String::new(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    query_offset: Option<String>,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<ExprText>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    logs: Option<RawLogs>,
}

/// `logs:` of a log rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogs {
    query: String,
    window: String,
    #[serde(default)]
    threshold: f64,
    by: Option<String>,
    label: Option<String>,
}

/// `expr:` may be written as a YAML number (`expr: 1`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExprText {
    Text(String),
    Int(i64),
    Float(f64),
}

impl ExprText {
    fn into_string(self) -> String {
        match self {
            ExprText::Text(s) => s,
            ExprText::Int(n) => n.to_string(),
            ExprText::Float(x) => x.to_string(),
        }
    }
}

/// Parses and validates one rule file's text. `name` is used in errors and as each group's
/// `file`. Returns every problem found, not just the first.
pub fn parse_rule_file(name: &Path, text: &str) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let err = |line: Option<usize>, group: Option<&str>, rule: Option<&str>, reason: String| RuleError {
        file: name.to_path_buf(),
        line,
        group: group.map(str::to_string),
        rule: rule.map(str::to_string),
        reason,
    };
    let raw: RawFile = match serde_yaml::from_str(text) {
        Ok(r) => r,
        Err(e)
            if text.trim().is_empty()
                || text
                    .lines()
                    .all(|l| l.trim().is_empty() || l.trim().starts_with('#')) =>
        {
            let _ = e;
            RawFile { groups: Vec::new() }
        }
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let msg = e.to_string();
            // serde_yaml appends " at line L column C"; the line is already in our prefix.
            let reason = match msg.find(" at line ") {
                Some(i) => msg.get(..i).unwrap_or(&msg).to_string(),
                None => msg,
            };
            return Err(vec![err(line, None, None, reason)]);
        }
    };
    let positions = scan_positions(text);
    let engine = Engine::new(EngineOptions::default());
    let empty = MemStorage::new();
    let file_label = name.display().to_string();
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gpos = positions.get(gi);
        let gline = gpos.map(|p| p.line);
        let gname = g.name.clone();
        if g.name.is_empty() {
            errors.push(err(gline, None, None, "group name must not be empty".into()));
        } else if !seen.insert(g.name.clone()) {
            errors.push(err(
                gline,
                Some(&gname),
                None,
                format!("group name {:?} is repeated in the same file", g.name),
            ));
        }
        let interval = match g.interval.as_deref().map(parse_prom_duration).transpose() {
            Ok(Some(d)) if d.is_zero() => {
                errors.push(err(
                    gline,
                    Some(&gname),
                    None,
                    "interval must be greater than 0".into(),
                ));
                None
            }
            Ok(d) => d,
            Err(e) => {
                errors.push(err(gline, Some(&gname), None, format!("bad interval: {e}")));
                None
            }
        };
        let query_offset = match g.query_offset.as_deref().map(parse_prom_duration).transpose() {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => {
                errors.push(err(gline, Some(&gname), None, format!("bad query_offset: {e}")));
                Duration::ZERO
            }
        };
        for name in g.labels.keys() {
            if !is_valid_label_name(name) {
                errors.push(err(
                    gline,
                    Some(&gname),
                    None,
                    format!("invalid label name {name:?}"),
                ));
            }
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let rline = gpos.and_then(|p| p.rules.get(ri)).copied().or(gline);
            let rname = r.alert.clone().or_else(|| r.record.clone()).unwrap_or_default();
            let mut rerr = |reason: String| errors.push(err(rline, Some(&gname), Some(&rname), reason));
            match validate_rule(r, &engine, &empty) {
                Ok(rule) => rules.push(rule),
                Err(reasons) => {
                    for reason in reasons {
                        rerr(reason);
                    }
                }
            }
        }
        groups.push(RuleGroup {
            name: g.name,
            file: file_label.clone(),
            origin: format!("file:{file_label}"),
            interval,
            query_offset,
            limit: usize::try_from(g.limit).unwrap_or(usize::MAX),
            labels: g.labels,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Checks one rule; every reason it is wrong.
fn validate_rule(r: RawRule, engine: &Engine, empty: &MemStorage) -> Result<Rule, Vec<String>> {
    let mut reasons = Vec::new();
    let expr = r.expr.map(ExprText::into_string).unwrap_or_default();
    match (&r.alert, &r.record) {
        (Some(_), Some(_)) => reasons.push("only one of 'record' and 'alert' must be set".to_string()),
        (None, None) => reasons.push("one of 'record' or 'alert' must be set".to_string()),
        (Some(a), None) if a.is_empty() => reasons.push("'alert' must not be empty".to_string()),
        _ => {}
    }
    let mut logs = None;
    if let Some(l) = &r.logs {
        if r.record.is_some() {
            reasons.push("invalid field 'logs' in recording rule".to_string());
        }
        if !expr.trim().is_empty() {
            reasons.push("a log rule has 'logs' instead of 'expr', not both".to_string());
        }
        if l.query.trim().is_empty() {
            reasons.push("logs.query must not be empty".to_string());
        }
        if let Some(label) = &l.label {
            if !is_valid_label_name(label) || l.by.is_none() {
                reasons.push(format!(
                    "logs.label {label:?} must be a valid label name and needs logs.by"
                ));
            }
        }
        match parse_prom_duration(&l.window) {
            Ok(w) if !w.is_zero() => {
                logs = Some(LogCondition {
                    query: l.query.clone(),
                    window: w,
                    threshold: l.threshold,
                    by: l.by.clone().filter(|b| !b.trim().is_empty()),
                    label: l.label.clone(),
                })
            }
            Ok(_) => reasons.push("logs.window must be greater than 0".to_string()),
            Err(e) => reasons.push(format!("bad logs.window: {e}")),
        }
    } else if expr.trim().is_empty() {
        reasons.push("field 'expr' must be set in rule".to_string());
    } else if let Err(e) = engine.instant_query(empty, &expr, 0) {
        // The engine checks the nesting depth (`query.max_depth`'s default) before parsing:
        // a rule deeper than that would fail at every evaluation, so it is refused here.
        match e {
            PromqlError::Parse { .. } => reasons.push(format!("could not parse expression {expr:?}: {e}")),
            PromqlError::TooDeep { .. } => reasons.push(format!("expression too deep: {e}")),
            _ => {}
        }
    }
    for name in r.labels.keys() {
        if !is_valid_label_name(name) {
            reasons.push(format!("invalid label name {name:?}"));
        }
    }
    if let Some(record) = &r.record {
        if !is_valid_metric_name(record) {
            reasons.push(format!("invalid recording rule name {record:?}"));
        }
        if r.for_.is_some() {
            reasons.push("invalid field 'for' in recording rule".to_string());
        }
        if r.keep_firing_for.is_some() {
            reasons.push("invalid field 'keep_firing_for' in recording rule".to_string());
        }
        if !r.annotations.is_empty() {
            reasons.push("invalid field 'annotations' in recording rule".to_string());
        }
    }
    let mut label_templates = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if r.alert.is_some() {
        for (k, v) in &r.labels {
            match Template::parse(v) {
                Ok(t) => {
                    label_templates.insert(k.clone(), t);
                }
                Err(e) => reasons.push(format!("bad template in label {k:?}: {e}")),
            }
        }
        for (k, v) in &r.annotations {
            if !is_valid_label_name(k) {
                reasons.push(format!("invalid annotation name {k:?}"));
            }
            match Template::parse(v) {
                Ok(t) => {
                    annotations.insert(k.clone(), t);
                }
                Err(e) => reasons.push(format!("bad template in annotation {k:?}: {e}")),
            }
        }
    }
    let mut dur = |field: &str, v: &Option<String>| -> Duration {
        match v.as_deref().map(parse_prom_duration).transpose() {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => {
                reasons.push(format!("bad '{field}': {e}"));
                Duration::ZERO
            }
        }
    };
    let for_ = dur("for", &r.for_);
    let keep_firing_for = dur("keep_firing_for", &r.keep_firing_for);
    if !reasons.is_empty() {
        return Err(reasons);
    }
    Ok(match (r.alert, r.record) {
        (Some(name), _) => Rule::Alerting(AlertingRule {
            name,
            expr: logs.as_ref().map(LogCondition::display).unwrap_or(expr),
            logs,
            for_,
            keep_firing_for,
            labels: label_templates,
            annotations,
        }),
        (None, Some(name)) => Rule::Recording(RecordingRule {
            name,
            expr,
            labels: r.labels,
        }),
        (None, None) => return Err(vec!["one of 'record' or 'alert' must be set".to_string()]),
    })
}

/// Where a group and its rules start in the text.
#[derive(Debug, Default)]
struct GroupPos {
    line: usize,
    rules: Vec<usize>,
}

/// Finds the line of each group item (`- name: …` under `groups:`) and rule item (under
/// `rules:`) by indentation. Good for block-style YAML, which is what rule files are;
/// flow-style lists get the group's line.
fn scan_positions(text: &str) -> Vec<GroupPos> {
    #[derive(PartialEq)]
    enum Expect {
        Nothing,
        Group,
        Rule,
    }
    let mut out: Vec<GroupPos> = Vec::new();
    let mut expect = Expect::Nothing;
    let mut group_col: Option<usize> = None;
    let mut rule_col: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let col = line.len() - trimmed.len();
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        let key_part = if is_item {
            trimmed.get(1..).unwrap_or("").trim_start()
        } else {
            trimmed
        };
        if is_item {
            match expect {
                Expect::Group => group_col = Some(col),
                Expect::Rule => rule_col = Some(col),
                Expect::Nothing => {}
            }
            expect = Expect::Nothing;
            if Some(col) == group_col {
                out.push(GroupPos {
                    line: i + 1,
                    rules: Vec::new(),
                });
                rule_col = None;
            } else if Some(col) == rule_col {
                if let Some(g) = out.last_mut() {
                    g.rules.push(i + 1);
                }
            }
        }
        if key_part.starts_with("groups:") && key_part.trim_end() == "groups:" {
            expect = Expect::Group;
        } else if key_part.starts_with("rules:") && key_part.trim_end() == "rules:" {
            expect = Expect::Rule;
        }
    }
    out
}

/// Reads and validates one file.
pub fn load_file(path: &Path) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleError {
            file: path.to_path_buf(),
            line: None,
            group: None,
            rule: None,
            reason: format!("cannot read: {e}"),
        }]
    })?;
    parse_rule_file(path, &text)
}

/// The `*.yml`/`*.yaml` files directly in `dir`, sorted; a missing directory has none.
pub fn rule_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && (ext == "yml" || ext == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every rule file of `dirs` (in order). All problems of all files are returned; a
/// group name repeated in two files is allowed (they are told apart by file).
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<RuleGroup>, Vec<RuleError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let files = match rule_files_in(dir) {
            Ok(f) => f,
            Err(e) => {
                errors.push(RuleError {
                    file: dir.clone(),
                    line: None,
                    group: None,
                    rule: None,
                    reason: format!("cannot list rule directory: {e}"),
                });
                continue;
            }
        };
        for f in files {
            match load_file(&f) {
                Ok(g) => groups.extend(g),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}
