#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use didban_store::model::is_stale_nan;
use didban_store::promql::promqltest::add_series;
use didban_store::promql::{Engine, EngineOptions, MemStorage};
use didban_store::{LabelMatcher, Queryable};
use parking_lot::Mutex;

use super::manager::next_slot;
use super::*;
use crate::notify::{Alert, AlertSink};
use crate::rules::parse_rule_file;

const MIN: i64 = 60_000;

#[derive(Default)]
struct Recorder(Mutex<Vec<(i64, Alert)>>);

impl AlertSink for Recorder {
    fn send(&self, alerts: Vec<Alert>, now_ms: i64) {
        let mut v = self.0.lock();
        for a in alerts {
            v.push((now_ms, a));
        }
    }
}

/// Storage loaded with promqltest series (one point per minute) and a group from YAML.
fn setup(
    series: &[(&str, &str)],
    yaml: &str,
) -> (GroupRuntime, EvalContext, Arc<MemRuleStorage>, Arc<Recorder>) {
    let mut mem = MemStorage::new();
    for (s, v) in series {
        add_series(&mut mem, s, v, MIN).unwrap();
    }
    let storage = Arc::new(MemRuleStorage::new(mem));
    let sink = Arc::new(Recorder::default());
    let ctx = EvalContext {
        storage: storage.clone(),
        engine: Arc::new(Engine::new(EngineOptions::default())),
        external_labels: [("cluster".to_string(), "eu".to_string())].into_iter().collect(),
        external_url: "http://didban:9480".into(),
        sink: Some(sink.clone()),
        resend_delay: Duration::from_secs(60),
        logs: None,
    };
    let group = parse_rule_file(Path::new("test.yaml"), yaml).unwrap().remove(0);
    (
        GroupRuntime::new(group, Duration::from_secs(60)),
        ctx,
        storage,
        sink,
    )
}

/// Value of series `name{labels}` at exactly `t`, if a sample is there.
fn sample_at(storage: &MemRuleStorage, matchers: &[(&str, &str)], t: i64) -> Option<f64> {
    let m: Vec<LabelMatcher> = matchers
        .iter()
        .map(|(n, v)| LabelMatcher::equal(*n, *v))
        .collect();
    let series = storage.select(&m, t, t).unwrap();
    series.first().and_then(|s| s.samples.first()).map(|p| p.value)
}

const DOWN_RULE: &str = r#"
groups:
  - name: g
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels:
          severity: "{{ if eq $labels.job \"db\" }}critical{{ else }}warning{{ end }}"
        annotations:
          summary: "{{ $labels.instance }} down ({{ $value }})"
"#;

#[tokio::test]
async fn pending_then_firing_then_resolved_with_alerts_series() {
    // up is 1 for 2m, 0 for 10m, then 1 again.
    let (mut g, ctx, storage, sink) = setup(&[(r#"up{job="db",instance="a"}"#, "1 1 0x8 1x20")], DOWN_RULE);
    let alerts = |g: &GroupRuntime| g.rules[0].alerts.active.values().next().cloned();
    g.eval(2 * MIN, &ctx).await;
    let a = alerts(&g).unwrap();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(a.labels.get("severity"), Some("critical"));
    assert_eq!(a.labels.get("alertname"), Some("InstanceDown"));
    assert_eq!(a.annotations["summary"], "a down (0)");
    assert_eq!(
        sample_at(
            &storage,
            &[("__name__", "ALERTS"), ("alertstate", "pending")],
            2 * MIN
        ),
        Some(1.0)
    );
    assert_eq!(
        sample_at(
            &storage,
            &[("__name__", "ALERTS_FOR_STATE"), ("instance", "a")],
            2 * MIN
        ),
        Some(120.0)
    );
    for m in 3..7 {
        g.eval(m * MIN, &ctx).await;
        assert_eq!(alerts(&g).unwrap().state, AlertState::Pending, "minute {m}");
    }
    assert!(sink.0.lock().is_empty(), "pending alerts are not notified");
    g.eval(7 * MIN, &ctx).await;
    assert_eq!(alerts(&g).unwrap().state, AlertState::Firing);
    assert_eq!(g.rules[0].alerts.rule_state(), AlertState::Firing);
    assert_eq!(
        sample_at(
            &storage,
            &[("__name__", "ALERTS"), ("alertstate", "firing")],
            7 * MIN
        ),
        Some(1.0)
    );
    // The pending series got a stale marker when the alert moved to firing.
    let stale = sample_at(
        &storage,
        &[("__name__", "ALERTS"), ("alertstate", "pending")],
        7 * MIN,
    )
    .unwrap();
    assert!(is_stale_nan(stale));
    {
        let sent = sink.0.lock();
        assert_eq!(sent.len(), 1);
        let (t, a) = &sent[0];
        assert_eq!(*t, 7 * MIN);
        assert_eq!(a.starts_at_ms, 7 * MIN);
        assert_eq!(a.ends_at_ms, 7 * MIN + 4 * MIN);
        assert_eq!(a.labels.get("cluster"), Some("eu"), "external labels are added");
        assert!(a
            .generator_url
            .starts_with("http://didban:9480/explore?q=up%20%3D%3D%200&view=table"));
    }
    g.eval(7 * MIN + 30_000, &ctx).await;
    assert_eq!(sink.0.lock().len(), 1, "not re-sent within the resend delay");
    g.eval(9 * MIN, &ctx).await;
    assert_eq!(sink.0.lock().len(), 2, "re-sent after the resend delay");
    // up is back at minute 11.
    g.eval(11 * MIN, &ctx).await;
    let a = alerts(&g).unwrap();
    assert_eq!(a.state, AlertState::Inactive);
    assert_eq!(a.resolved_at_ms, Some(11 * MIN));
    assert!(is_stale_nan(
        sample_at(
            &storage,
            &[("__name__", "ALERTS"), ("alertstate", "firing")],
            11 * MIN
        )
        .unwrap()
    ));
    {
        let sent = sink.0.lock();
        let (_, last) = sent.last().unwrap();
        assert_eq!(last.ends_at_ms, 11 * MIN, "resolution is sent with its time");
    }
    // Kept 15 minutes as resolved, then dropped.
    g.eval(26 * MIN, &ctx).await;
    assert_eq!(g.rules[0].alerts.active.len(), 1);
    g.eval(26 * MIN + 1, &ctx).await;
    assert!(g.rules[0].alerts.active.is_empty());
    assert_eq!(g.rules[0].health, Health::Ok);
}

#[tokio::test]
async fn pending_alert_that_disappears_is_dropped_and_never_sent() {
    let (mut g, ctx, _, sink) = setup(&[(r#"up{job="web",instance="b"}"#, "0 0 1x10")], DOWN_RULE);
    g.eval(0, &ctx).await;
    assert_eq!(g.rules[0].alerts.active.len(), 1);
    g.eval(2 * MIN, &ctx).await;
    assert!(g.rules[0].alerts.active.is_empty());
    assert!(sink.0.lock().is_empty());
}

#[tokio::test]
async fn keep_firing_for_holds_the_alert() {
    let yaml = r#"
groups:
  - name: g
    rules:
      - alert: Flappy
        expr: x > 0
        keep_firing_for: 3m
"#;
    let (mut g, ctx, _, _) = setup(&[("x", "1 0x10")], yaml);
    g.eval(0, &ctx).await;
    let state = |g: &GroupRuntime| g.rules[0].alerts.active.values().next().map(|a| a.state);
    assert_eq!(state(&g), Some(AlertState::Firing), "for: 0 fires at once");
    g.eval(MIN, &ctx).await;
    assert_eq!(state(&g), Some(AlertState::Firing));
    g.eval(3 * MIN, &ctx).await;
    assert_eq!(state(&g), Some(AlertState::Firing));
    g.eval(4 * MIN, &ctx).await;
    assert_eq!(state(&g), Some(AlertState::Inactive));
}

#[tokio::test]
async fn recording_rules_feed_later_rules_of_the_group() {
    let yaml = r#"
groups:
  - name: g
    labels:
      team: ops
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors)
        labels:
          source: rule
      - alert: ManyErrors
        expr: job:errors:sum > 5
"#;
    let (mut g, ctx, storage, _) = setup(
        &[
            (r#"errors{job="api",i="1"}"#, "3x5"),
            (r#"errors{job="api",i="2"}"#, "4x5"),
        ],
        yaml,
    );
    g.eval(MIN, &ctx).await;
    assert_eq!(
        sample_at(
            &storage,
            &[
                ("__name__", "job:errors:sum"),
                ("job", "api"),
                ("team", "ops"),
                ("source", "rule")
            ],
            MIN
        ),
        Some(7.0)
    );
    let a = g.rules[1].alerts.active.values().next().unwrap();
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.labels.get("team"), Some("ops"), "group labels reach alerts");
    assert_eq!(a.value, 7.0);
}

#[tokio::test]
async fn errors_are_per_rule_and_limits_apply() {
    let yaml = r#"
groups:
  - name: g
    limit: 1
    rules:
      - alert: Many
        expr: up
      - record: many
        expr: up
      - alert: Fine
        expr: vector(1)
"#;
    let (mut g, ctx, storage, _) = setup(
        &[(r#"up{instance="a"}"#, "1x5"), (r#"up{instance="b"}"#, "1x5")],
        yaml,
    );
    g.eval(MIN, &ctx).await;
    assert_eq!(g.rules[0].health, Health::Err);
    assert_eq!(
        g.rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert_eq!(g.rules[1].health, Health::Err);
    assert!(g.rules[1]
        .last_error
        .as_deref()
        .unwrap()
        .contains("exceeded limit of 1 with 2 series"));
    assert_eq!(g.rules[2].health, Health::Ok);
    assert_eq!(g.rules[2].alerts.rule_state(), AlertState::Firing);
    // The group's own figures are written as series.
    let group = [("rule_group", "test.yaml;g")];
    let q = |name: &str| {
        let mut m = vec![("__name__", name)];
        m.extend(group);
        sample_at(&storage, &m, MIN)
    };
    assert_eq!(q("didban_rule_evaluation_failures_total"), Some(2.0));
    assert_eq!(q("didban_rule_group_iterations_total"), Some(1.0));
    assert_eq!(q("didban_rule_group_rules"), Some(3.0));
}

#[tokio::test]
async fn restart_restores_for_state_without_repaging_or_restarting_for() {
    let (mut g, ctx, storage, _) = setup(&[(r#"up{job="db",instance="a"}"#, "0x60")], DOWN_RULE);
    for m in 0..8 {
        g.eval(m * MIN, &ctx).await;
    }
    let before = g.rules[0].alerts.active.values().next().cloned().unwrap();
    assert_eq!(before.state, AlertState::Firing);
    assert_eq!(before.active_at_ms, 0);

    // "Restart": a fresh group over the same storage, 3 minutes later.
    let (fresh, _, _, _) = setup(&[], DOWN_RULE);
    let mut g2 = GroupRuntime::new(fresh.group, Duration::from_secs(60));
    g2.eval(10 * MIN, &ctx).await;
    let after = g2.rules[0].alerts.active.values().next().cloned().unwrap();
    assert_eq!(
        after.active_at_ms, 0,
        "active_at comes back from ALERTS_FOR_STATE"
    );
    assert_eq!(
        after.state,
        AlertState::Firing,
        "fires at once: for is not restarted"
    );
    assert_eq!(
        sample_at(&storage, &[("__name__", "ALERTS_FOR_STATE")], 10 * MIN),
        Some(0.0)
    );

    // A pending alert: 2 of 5 minutes spent, 10 minutes down; 3 minutes remain after restart.
    let (mut g, ctx, _, _) = setup(&[(r#"up{job="db",instance="a"}"#, "0x60")], DOWN_RULE);
    g.eval(0, &ctx).await;
    g.eval(2 * MIN, &ctx).await;
    let (fresh, _, _, _) = setup(&[], DOWN_RULE);
    let mut g2 = GroupRuntime::new(fresh.group, Duration::from_secs(60));
    g2.eval(12 * MIN, &ctx).await;
    let a = g2.rules[0].alerts.active.values().next().cloned().unwrap();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(
        a.active_at_ms,
        10 * MIN,
        "the downtime does not count towards for"
    );
    g2.eval(14 * MIN, &ctx).await;
    assert_eq!(
        g2.rules[0].alerts.active.values().next().unwrap().state,
        AlertState::Pending
    );
    g2.eval(15 * MIN, &ctx).await;
    assert_eq!(
        g2.rules[0].alerts.active.values().next().unwrap().state,
        AlertState::Firing
    );
}

#[test]
fn slots_are_stable_and_missed_iterations_counted() {
    let (g, _, _, _) = setup(&[], DOWN_RULE);
    let off = g.slot_offset_ms();
    assert!((0..MIN).contains(&off));
    let (g2, _, _, _) = setup(&[], DOWN_RULE);
    assert_eq!(g2.slot_offset_ms(), off, "same file and name, same slot");
    let s = g.slot_at_or_before(10 * MIN + off + 5);
    assert_eq!(s, 10 * MIN + off);
    assert_eq!(g.slot_at_or_before(s), s);
    assert_eq!(next_slot(0, 10, MIN), (MIN, 0));
    assert_eq!(next_slot(0, MIN + 1, MIN), (MIN, 0));
    assert_eq!(next_slot(0, 3 * MIN + 5, MIN), (3 * MIN, 2));
}

#[tokio::test]
async fn reload_keeps_the_last_good_rules_and_alert_state() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), DOWN_RULE).unwrap();
    let (_, ctx, _, _) = setup(&[(r#"up{job="db",instance="a"}"#, "0x60")], DOWN_RULE);
    let m = RuleManager::new(vec![dir.path().to_path_buf()], Duration::from_secs(60), ctx);
    assert_eq!(m.reload(false).await.unwrap(), 1);
    m.eval_all_at(0).await;
    m.eval_all_at(6 * MIN).await;
    std::fs::write(
        dir.path().join("bad.yaml"),
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: (\n",
    )
    .unwrap();
    let errors = m.reload(false).await.unwrap_err();
    assert!(errors[0].to_string().contains("bad.yaml:4"), "{}", errors[0]);
    assert!(!m.status().ok);
    assert_eq!(m.groups().len(), 1, "previous rules kept");
    std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
    m.reload(false).await.unwrap();
    let g = m.groups()[0].clone();
    let g = g.lock().await;
    assert_eq!(
        g.rules[0].alerts.rule_state(),
        AlertState::Firing,
        "state survives a reload"
    );
}

/// Log records at fixed times; `count` answers like the log store would.
struct FakeLogs(Vec<(i64, &'static str)>);

impl LogSource for FakeLogs {
    fn count(&self, query: &str, start_ms: i64, end_ms: i64) -> Result<u64, String> {
        let mut n = 0;
        for (t, body) in &self.0 {
            if *t >= start_ms && *t <= end_ms && body.contains(query) {
                n += 1;
            }
        }
        Ok(n)
    }
}

const LOG_RULE: &str = r#"
groups:
  - name: security
    rules:
      - alert: FailedLoginsBurst
        logs:
          query: "AXES: Repeated login failure"
          window: 5m
          threshold: 3
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "{{ $value }} failed logins in 5 minutes"
"#;

#[tokio::test]
async fn log_rules_count_records_with_the_same_state_machine() {
    let (mut g, mut ctx, _, sink) = setup(&[], LOG_RULE);
    let mut records = Vec::new();
    for i in 0..5 {
        records.push((10 * MIN + i * 1000, "AXES: Repeated login failure for admin"));
    }
    records.push((10 * MIN, "GET / 200"));
    ctx.logs = Some(Arc::new(FakeLogs(records)));
    g.eval(9 * MIN, &ctx).await;
    assert!(g.rules[0].alerts.active.is_empty());
    g.eval(11 * MIN, &ctx).await;
    let a = g.rules[0].alerts.active.values().next().cloned().unwrap();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(a.annotations["summary"], "5 failed logins in 5 minutes");
    g.eval(12 * MIN, &ctx).await;
    assert_eq!(g.rules[0].alerts.rule_state(), AlertState::Firing);
    let url = sink.0.lock()[0].1.generator_url.clone();
    assert!(
        url.starts_with("http://didban:9480/logs?q=AXES%3A%20Repeated"),
        "{url}"
    );
    // The window has passed: resolved.
    g.eval(16 * MIN, &ctx).await;
    assert_eq!(g.rules[0].alerts.rule_state(), AlertState::Inactive);
    // Without a log store the rule fails clearly and nothing else is affected.
    ctx.logs = None;
    g.eval(17 * MIN, &ctx).await;
    assert_eq!(g.rules[0].health, Health::Err);
    assert!(g.rules[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("need the log store"));
}

/// Rule storage whose reads of `heavy` take longer than the test group's interval.
struct SlowHeavy(MemRuleStorage);

impl Queryable for SlowHeavy {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<didban_store::SeriesSamples>, didban_store::ReadError> {
        if matchers.iter().any(|m| m.value == "heavy") {
            std::thread::sleep(Duration::from_millis(300));
        }
        self.0.select(matchers, start_ms, end_ms)
    }
}

impl RuleStorage for SlowHeavy {
    fn queryable(&self) -> &dyn Queryable {
        self
    }

    fn append(
        &self,
        batch: Vec<didban_store::SeriesSamples>,
    ) -> super::storage::BoxFuture<'_, Result<(), String>> {
        self.0.append(batch)
    }
}

#[tokio::test]
async fn a_rule_past_the_group_interval_fails_alone() {
    let yaml = "groups:\n  - name: g\n    interval: 50ms\n    rules:\n      - record: slow\n        expr: sum(heavy)\n      - record: quick\n        expr: sum(light)\n";
    let (mut group, mut ctx, _, _) = setup(&[], yaml);
    let mut mem = MemStorage::new();
    add_series(&mut mem, "heavy", "1x5", MIN).unwrap();
    add_series(&mut mem, "light", "2x5", MIN).unwrap();
    ctx.storage = Arc::new(SlowHeavy(MemRuleStorage::new(mem)));
    group.eval(3 * MIN, &ctx).await;
    let slow = &group.rules[0];
    assert_eq!(slow.health, Health::Err);
    let error = slow.last_error.clone().unwrap_or_default();
    assert!(error.contains("at most the group interval, 50ms"), "{error}");
    // The next rule of the same round has its own deadline and succeeds.
    let quick = &group.rules[1];
    assert_eq!(quick.health, Health::Ok, "{:?}", quick.last_error);
}

#[test]
fn the_test_log_source_understands_or_and_parentheses() {
    let rec = |body: &str, status: &str| MemLogRecord {
        t_ms: 1_000,
        body: body.to_string(),
        fields: [(
            "attributes.http.response.status_code".to_string(),
            status.to_string(),
        )]
        .into_iter()
        .collect(),
    };
    let src = MemLogSource::new(vec![
        rec("Login failed for user admin", "200"),
        rec("AUTHENTICATION FAILED for bob", "200"),
        rec("user logged in", "200"),
        rec("POST /login 401", "401"),
        rec("GET /admin 403", "403"),
        rec("GET /missing 404", "404"),
    ]);
    let count = |q: &str| src.count(q, 0, 2_000).unwrap();
    assert_eq!(count(r#""login failed" OR "authentication failed""#), 2);
    assert_eq!(count(r#"user OR bob"#), 3);
    assert_eq!(
        count("attributes.http.response.status_code:[401 TO 401] OR attributes.http.response.status_code:[403 TO 403]"),
        2
    );
    assert_eq!(
        count(r#"(login OR admin) AND attributes.http.response.status_code:[400 TO 499]"#),
        2
    );
    assert_eq!(count(r#"GET (admin OR missing)"#), 2);
    assert_eq!(count(r#"logged in"#), 1);
}
