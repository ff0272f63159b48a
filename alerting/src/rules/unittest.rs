//! Rule unit tests in promtool's format (`promtool test rules`): input series in promqltest
//! notation, then the alerts expected to be firing at given times and PromQL expressions
//! expected to give given samples. The shipped rule packs are tested this way, and users can
//! test their own rules the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use didban_store::promql::promqltest::{add_points, expand_points, parse_series_desc, Point};
use didban_store::promql::{Engine, EngineOptions, MemStorage, Value};
use didban_store::Labels;
use serde::Deserialize;

use super::duration::parse_prom_duration;
use super::file::{load_file, RuleError};
use super::model::RuleGroup;
use super::packs::{pack_for_path, PackTest};
use crate::eval::{AlertState, EvalContext, GroupRuntime, MemLogRecord, MemLogSource, MemRuleStorage};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule_files: Vec<PathBuf>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    /// Didban's extension for log rules: log records, `time` as a duration from 0.
    #[serde(default)]
    input_logs: Vec<InputLog>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    external_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLog {
    time: String,
    body: String,
    /// Fields for `logs.by` (`service`, `attributes.<key>`).
    #[serde(default)]
    fields: BTreeMap<String, String>,
    /// Repeat the record this many times (default 1).
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

fn dur_ms(s: &str, what: &str) -> Result<i64, String> {
    let d = parse_prom_duration(s).map_err(|e| format!("{what}: {e}"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("{what}: {s:?} is too long"))
}

/// Runs the test file at `path`; every failed expectation is one line of the result.
pub async fn run_test_file(path: &Path) -> Result<(), Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    run_test_text(path, &text, |f| load_file(&base.join(f))).await
}

/// Runs a built-in pack test; its `rule_files` name built-in packs (`../redis.yaml`).
pub async fn run_builtin_test(test: &PackTest) -> Result<(), Vec<String>> {
    run_test_text(&test.file_name(), test.text, |f| match pack_for_path(f) {
        Some(p) => p.groups(),
        None => Err(vec![RuleError {
            file: f.to_path_buf(),
            line: None,
            group: None,
            rule: None,
            reason: "no built-in pack has this file name".into(),
        }]),
    })
    .await
}

/// Runs the test file `text` (reported as `path`), loading its `rule_files` with `load`.
async fn run_test_text(
    path: &Path,
    text: &str,
    load: impl Fn(&Path) -> Result<Vec<RuleGroup>, Vec<RuleError>>,
) -> Result<(), Vec<String>> {
    let file: TestFile = serde_yaml::from_str(text).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let eval_interval = dur_ms(
        file.evaluation_interval.as_deref().unwrap_or("1m"),
        "evaluation_interval",
    )
    .map_err(|e| vec![e])?;
    let mut groups = Vec::new();
    for f in &file.rule_files {
        match load(f) {
            Ok(g) => groups.extend(g),
            Err(errors) => return Err(errors.iter().map(ToString::to_string).collect()),
        }
    }
    if !file.group_eval_order.is_empty() {
        groups.sort_by_key(|g| {
            file.group_eval_order
                .iter()
                .position(|n| *n == g.name)
                .unwrap_or(usize::MAX)
        });
    }
    let mut failures = Vec::new();
    for (i, tg) in file.tests.iter().enumerate() {
        let name = if tg.name.is_empty() {
            format!("test {i}")
        } else {
            tg.name.clone()
        };
        if let Err(e) = run_group(tg, &groups, eval_interval).await {
            for line in e {
                failures.push(format!("{}: {name}: {line}", path.display()));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

async fn run_group(tg: &TestGroup, groups: &[RuleGroup], eval_interval: i64) -> Result<(), Vec<String>> {
    let step = match &tg.interval {
        Some(s) => dur_ms(s, "interval").map_err(|e| vec![e])?,
        None => eval_interval,
    };
    let mut mem = MemStorage::new();
    for s in &tg.input_series {
        let (labels, rest) =
            parse_series_desc(&s.series).map_err(|e| vec![format!("series {:?}: {e}", s.series)])?;
        if !rest.trim().is_empty() {
            return Err(vec![format!("series {:?}: unexpected {rest:?}", s.series)]);
        }
        let points: Vec<Point> =
            expand_points(&s.values).map_err(|e| vec![format!("values {:?}: {e}", s.values)])?;
        add_points(&mut mem, &labels, &points, step);
    }
    let storage = Arc::new(MemRuleStorage::new(mem));
    let mut logs = Vec::new();
    for l in &tg.input_logs {
        let t = dur_ms(&l.time, "input_logs time").map_err(|e| vec![e])?;
        for _ in 0..l.count {
            logs.push(MemLogRecord {
                t_ms: t,
                body: l.body.clone(),
                fields: l.fields.clone(),
            });
        }
    }
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let ctx = EvalContext {
        storage: storage.clone(),
        engine: engine.clone(),
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone().unwrap_or_default(),
        sink: None,
        resend_delay: Duration::from_secs(60),
        logs: Some(Arc::new(MemLogSource::new(logs))),
    };
    let mut runtimes: Vec<GroupRuntime> = Vec::new();
    for g in groups {
        let mut rt = GroupRuntime::new(
            g.clone(),
            Duration::from_millis(u64::try_from(eval_interval).unwrap_or(60_000)),
        );
        // Every group of a test advances at the file's evaluation interval, as promtool.
        rt.interval = Duration::from_millis(u64::try_from(eval_interval).unwrap_or(60_000));
        runtimes.push(rt);
    }
    let mut checks: Vec<(i64, Check<'_>)> = Vec::new();
    for a in &tg.alert_rule_test {
        checks.push((
            dur_ms(&a.eval_time, "eval_time").map_err(|e| vec![e])?,
            Check::Alert(a),
        ));
    }
    for e in &tg.promql_expr_test {
        checks.push((
            dur_ms(&e.eval_time, "eval_time").map_err(|e| vec![e])?,
            Check::Expr(e),
        ));
    }
    checks.sort_by_key(|(t, _)| *t);
    let mut failures = Vec::new();
    let mut t = 0i64;
    let mut next_check = 0usize;
    let last = checks.last().map(|(t, _)| *t).unwrap_or(0);
    while t <= last {
        for rt in &mut runtimes {
            rt.eval(t, &ctx).await;
        }
        let until = t + eval_interval;
        while let Some((ct, check)) = checks.get(next_check) {
            if *ct >= until {
                break;
            }
            next_check += 1;
            let r = match check {
                Check::Alert(a) => check_alert(a, &runtimes),
                Check::Expr(e) => check_expr(e, &engine, storage.as_ref(), *ct),
            };
            if let Err(e) = r {
                failures.push(format!("at {}ms: {e}", ct));
            }
        }
        t = until;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

enum Check<'a> {
    Alert(&'a AlertTest),
    Expr(&'a ExprTest),
}

fn check_alert(a: &AlertTest, runtimes: &[GroupRuntime]) -> Result<(), String> {
    let mut got: Vec<(Labels, BTreeMap<String, String>)> = Vec::new();
    for rt in runtimes {
        for r in &rt.rules {
            if r.rule.name() != a.alertname {
                continue;
            }
            for al in r.alerts.active.values() {
                if al.state == AlertState::Firing {
                    got.push((al.labels.clone(), al.annotations.clone()));
                }
            }
        }
    }
    let mut want: Vec<(Labels, BTreeMap<String, String>)> = Vec::new();
    for e in &a.exp_alerts {
        let mut pairs: Vec<(String, String)> = e.exp_labels.clone().into_iter().collect();
        pairs.push(("alertname".into(), a.alertname.clone()));
        want.push((Labels::from_pairs(pairs), e.exp_annotations.clone()));
    }
    got.sort();
    want.sort();
    if got == want {
        return Ok(());
    }
    let show = |v: &[(Labels, BTreeMap<String, String>)]| -> String {
        let parts: Vec<String> = v.iter().map(|(l, a)| format!("{l} {a:?}")).collect();
        format!("[{}]", parts.join(", "))
    };
    Err(format!(
        "alert {}: expected firing {}, got {}",
        a.alertname,
        show(&want),
        show(&got)
    ))
}

fn check_expr(e: &ExprTest, engine: &Engine, storage: &MemRuleStorage, t: i64) -> Result<(), String> {
    let v = engine
        .instant_query(storage, &e.expr, t)
        .map_err(|err| format!("{}: {err}", e.expr))?;
    let mut got: Vec<(Labels, f64)> = match v.value {
        Value::Vector(s) => s.into_iter().map(|s| (s.labels, s.v)).collect(),
        Value::Scalar { v, .. } => vec![(Labels::default(), v)],
        other => return Err(format!("{}: unexpected result {other:?}", e.expr)),
    };
    let mut want: Vec<(Labels, f64)> = Vec::new();
    for s in &e.exp_samples {
        let labels = if s.labels.trim().is_empty() {
            Labels::default()
        } else {
            parse_series_desc(&s.labels)
                .map_err(|err| format!("labels {:?}: {err}", s.labels))?
                .0
        };
        want.push((labels, s.value));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want.iter())
            .all(|(g, w)| g.0 == w.0 && didban_store::promql::promqltest::almost_equal(g.1, w.1));
    if same {
        Ok(())
    } else {
        Err(format!("{}: expected {want:?}, got {got:?}", e.expr))
    }
}
