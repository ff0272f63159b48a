//! `[alerting] time_scale`: every group's interval and every rule's `for` and
//! `keep_firing_for` are scaled, built-in packs and rule files alike; expressions (and their
//! range windows) are not; a value that is not positive is refused naming it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use didban_alerting::eval::MemRuleStorage;
use didban_alerting::rules::Rule;
use didban_alerting::{Alerting, AlertingSettings};
use didban_store::promql::{Engine, EngineOptions, MemStorage};

fn engine(settings: &AlertingSettings, dir: &std::path::Path) -> Result<Arc<Alerting>, String> {
    Alerting::new(
        settings,
        dir,
        "http://didban.test",
        Arc::new(MemRuleStorage::new(MemStorage::new())),
        Arc::new(Engine::new(EngineOptions::default())),
        None,
    )
    .map_err(|e| e.to_string())
}

/// `(interval, for, keep_firing_for, expr)` of alert `name` in group `group`.
async fn timing(a: &Alerting, group: &str, name: &str) -> (Duration, Duration, Duration, String) {
    for g in a.manager.groups() {
        let g = g.lock().await;
        if g.group.name != group {
            continue;
        }
        for r in &g.rules {
            if let Rule::Alerting(rule) = r.rule.as_ref() {
                if rule.name == name {
                    return (g.interval, rule.for_, rule.keep_firing_for, rule.expr.clone());
                }
            }
        }
    }
    panic!("no {name} in {group}");
}

#[tokio::test]
async fn packs_and_files_are_scaled_alike() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/mine.yaml"),
        "groups:\n  - name: mine\n    rules:\n      - alert: Mine\n        expr: rate(x[5m]) > 1\n        for: 10m\n        keep_firing_for: 2m\n",
    )
    .unwrap();
    let plain = engine(&AlertingSettings::default(), dir.path()).unwrap();
    plain.manager.reload(false).await.unwrap();
    let settings = AlertingSettings {
        time_scale: Some(0.1),
        ..AlertingSettings::default()
    };
    let scaled = engine(&settings, dir.path()).unwrap();
    scaled.manager.reload(false).await.unwrap();

    // A pack group with its own interval (15s) and `for: 1m`.
    let p = timing(&plain, "didban-celery-workers", "CeleryWorkerDown").await;
    let s = timing(&scaled, "didban-celery-workers", "CeleryWorkerDown").await;
    assert_eq!((p.0, p.1), (Duration::from_secs(15), Duration::from_secs(60)));
    assert_eq!((s.0, s.1), (Duration::from_millis(1500), Duration::from_secs(6)));
    assert_eq!(s.3, p.3, "expressions are not touched");
    // A file group on the default interval (1m), with keep_firing_for.
    let s = timing(&scaled, "mine", "Mine").await;
    assert_eq!(
        (s.0, s.1, s.2),
        (
            Duration::from_secs(6),
            Duration::from_secs(60),
            Duration::from_secs(12)
        )
    );
    assert_eq!(s.3, "rate(x[5m]) > 1");
    // `for: 0` stays 0 (fires at once).
    let s = timing(&scaled, "didban-host", "Watchdog").await;
    assert_eq!(s.1, Duration::ZERO);
}

#[tokio::test]
async fn a_scale_that_is_not_positive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0.0, -1.0, f64::NAN] {
        let settings = AlertingSettings {
            time_scale: Some(bad),
            ..AlertingSettings::default()
        };
        let err = engine(&settings, dir.path()).err().unwrap();
        assert!(
            err.contains("alerting.time_scale") && err.contains(&bad.to_string()),
            "{err}"
        );
    }
}
