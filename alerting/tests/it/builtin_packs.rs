//! The built-in rule packs as the server runs them: on by default with no file on disk,
//! turned off per pack or per rule, threshold overrides written as `didban_threshold`
//! series, a user group replacing the pack group of the same name, reload applying changed
//! settings, and each group's origin in `/api/v1/rules`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use didban_alerting::eval::MemRuleStorage;
use didban_alerting::{Alerting, AlertingSettings};
use didban_store::promql::{Engine, EngineOptions, MemStorage, Value};
use parking_lot::Mutex;

fn engine(settings: &AlertingSettings, dir: &Path) -> (Arc<Alerting>, Arc<MemRuleStorage>) {
    let storage = Arc::new(MemRuleStorage::new(MemStorage::new()));
    let a = Alerting::new(
        settings,
        dir,
        "http://didban.test",
        storage.clone(),
        Arc::new(Engine::new(EngineOptions::default())),
        None,
    )
    .unwrap();
    (a, storage)
}

/// `(group name, origin, rule names)` of every loaded group.
async fn groups(a: &Alerting) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for g in a.manager.groups() {
        let g = g.lock().await;
        let rules = g.rules.iter().map(|r| r.rule.name().to_string()).collect();
        out.push((g.group.name.clone(), g.group.origin.clone(), rules));
    }
    out
}

fn find<'a>(
    gs: &'a [(String, String, Vec<String>)],
    name: &str,
) -> Option<&'a (String, String, Vec<String>)> {
    gs.iter().find(|g| g.0 == name)
}

#[tokio::test]
async fn packs_run_by_default_with_their_origin_in_the_rules_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/mine.yaml"),
        "groups:\n  - name: mine\n    rules:\n      - alert: Mine\n        expr: vector(1)\n",
    )
    .unwrap();
    let (a, _) = engine(&AlertingSettings::default(), dir.path());
    a.manager.reload(false).await.unwrap();
    let gs = groups(&a).await;
    for pack in [
        "host",
        "postgres",
        "redis",
        "celery",
        "http",
        "serverless",
        "security",
        "probes",
        "didban",
    ] {
        let g = gs
            .iter()
            .find(|g| g.1 == format!("pack:{pack}"))
            .unwrap_or_else(|| panic!("pack {pack} is not loaded: {gs:?}"));
        assert!(!g.2.is_empty());
    }
    assert!(find(&gs, "didban-redis")
        .unwrap()
        .2
        .contains(&"RedisHitRatioLow".to_string()));
    let mine = find(&gs, "mine").unwrap();
    assert!(
        mine.1.starts_with("file:") && mine.1.ends_with("rules/mine.yaml"),
        "{mine:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = didban_alerting::http::router(a.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let body: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_groups = body["data"]["groups"].as_array().unwrap();
    let redis = api_groups.iter().find(|g| g["name"] == "didban-redis").unwrap();
    assert_eq!(redis["origin"], "pack:redis");
    assert_eq!(redis["file"], "<builtin>/redis.yaml");
    assert_eq!(redis["rules"][0]["origin"], "pack:redis");
    let mine = api_groups.iter().find(|g| g["name"] == "mine").unwrap();
    assert!(mine["origin"].as_str().unwrap().starts_with("file:"));
}

#[tokio::test]
async fn packs_and_rules_turn_off_and_a_user_group_replaces_the_pack_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    // The user's own version of the PostgreSQL group: it replaces the pack's.
    std::fs::write(
        dir.path().join("rules/pg.yaml"),
        "groups:\n  - name: didban-postgres\n    rules:\n      - alert: PostgresDown\n        expr: pg_up == 0\n        for: 5m\n",
    )
    .unwrap();
    let settings = AlertingSettings {
        disabled_packs: vec!["serverless".into()],
        disabled_rules: vec!["RedisHitRatioLow".into(), "Watchdog".into()],
        ..AlertingSettings::default()
    };
    let (a, _) = engine(&settings, dir.path());
    a.manager.reload(false).await.unwrap();
    let gs = groups(&a).await;
    assert!(gs.iter().all(|g| g.1 != "pack:serverless"), "{gs:?}");
    let redis = find(&gs, "didban-redis").unwrap();
    assert!(!redis.2.contains(&"RedisHitRatioLow".to_string()));
    assert!(redis.2.contains(&"RedisDown".to_string()));
    assert!(!find(&gs, "didban-host")
        .unwrap()
        .2
        .contains(&"Watchdog".to_string()));
    let pg: Vec<_> = gs.iter().filter(|g| g.0 == "didban-postgres").collect();
    assert_eq!(pg.len(), 1, "{pg:?}");
    assert!(pg[0].1.starts_with("file:"));
    assert_eq!(pg[0].2, vec!["PostgresDown".to_string()]);
}

#[tokio::test]
async fn unknown_pack_or_rule_names_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let settings = AlertingSettings {
        disabled_packs: vec!["serverles".into()],
        disabled_rules: vec!["RedisHitRatio".into()],
        ..AlertingSettings::default()
    };
    let (a, _) = engine(&settings, dir.path());
    let errors = a.manager.reload(false).await.unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let text = text.join("\n");
    assert!(
        text.contains("alerting.disabled_packs") && text.contains("\"serverles\""),
        "{text}"
    );
    assert!(
        text.contains("alerting.disabled_rules") && text.contains("\"RedisHitRatio\""),
        "{text}"
    );
}

#[tokio::test]
async fn configured_thresholds_are_didban_threshold_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut thresholds = BTreeMap::new();
    thresholds.insert("CeleryQueueBacklog".to_string(), 500.0);
    thresholds.insert("RedisHitRatioLow".to_string(), 0.5);
    let settings = AlertingSettings {
        thresholds,
        ..AlertingSettings::default()
    };
    let (a, storage) = engine(&settings, dir.path());
    a.manager.reload(false).await.unwrap();
    let gs = groups(&a).await;
    assert_eq!(
        find(&gs, "didban-thresholds").unwrap().1,
        "config:alerting.thresholds"
    );
    a.manager.eval_all_at(60_000).await;
    let q = Engine::new(EngineOptions::default());
    let got = q
        .instant_query(
            storage.as_ref(),
            r#"didban_threshold{alert="CeleryQueueBacklog"}"#,
            60_000,
        )
        .unwrap();
    match got.value {
        Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].v, 500.0);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reload_applies_changed_pack_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = engine(&AlertingSettings::default(), dir.path());
    a.manager.reload(false).await.unwrap();
    assert!(find(&groups(&a).await, "didban-serverless").is_some());
    let next = Arc::new(Mutex::new(AlertingSettings {
        disabled_packs: vec!["serverless".into()],
        ..AlertingSettings::default()
    }));
    let source = next.clone();
    a.set_settings_source(Arc::new(move || Ok(source.lock().clone())));
    a.reload().await.unwrap();
    assert!(find(&groups(&a).await, "didban-serverless").is_none());
    // A bad new setting is refused; the running rules stay.
    next.lock().disabled_packs = vec!["nope".into()];
    assert!(a.reload().await.is_err());
    assert!(find(&groups(&a).await, "didban-redis").is_some());
    assert!(find(&groups(&a).await, "didban-serverless").is_none());
    next.lock().disabled_packs = Vec::new();
    a.reload().await.unwrap();
    assert!(find(&groups(&a).await, "didban-serverless").is_some());
}

#[tokio::test]
async fn built_in_tests_run_against_the_built_in_packs() {
    let t = didban_alerting::rules::packs::PACK_TESTS
        .iter()
        .find(|t| t.name == "redis")
        .unwrap();
    didban_alerting::rules::unittest::run_builtin_test(t)
        .await
        .unwrap();
}
