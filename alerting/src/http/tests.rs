#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use didban_store::promql::promqltest::add_series;
use didban_store::promql::{Engine, EngineOptions, MemStorage};
use serde_json::{json, Value};

use crate::eval::MemRuleStorage;
use crate::service::{Alerting, AlertingSettings};

const RULES: &str = r#"
groups:
  - name: db
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 1m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} down"
"#;

async fn serve() -> (String, Arc<Alerting>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/db.yaml"), RULES).unwrap();
    let mut mem = MemStorage::new();
    add_series(&mut mem, r#"up{job="db",instance="a"}"#, "0x100", 60_000).unwrap();
    let storage = Arc::new(MemRuleStorage::new(mem));
    // Only this test's rule file: the built-in packs would add groups of their own.
    let settings = AlertingSettings {
        packs_enabled: Some(false),
        ..AlertingSettings::default()
    };
    let a = Alerting::new(
        &settings,
        dir.path(),
        "http://didban:9480",
        storage,
        Arc::new(Engine::new(EngineOptions::default())),
        None,
    )
    .unwrap();
    a.manager.reload(false).await.unwrap();
    a.manager.eval_all_at(60_000).await;
    a.manager.eval_all_at(180_000).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = super::router(a.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), a, dir)
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn rules_and_alerts_in_prometheus_shape() {
    let (base, _a, _dir) = serve().await;
    let (status, body) = get(&format!("{base}/api/v1/rules")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    let g = &body["data"]["groups"][0];
    assert_eq!(g["name"], "db");
    assert!(g["file"].as_str().unwrap().ends_with("rules/db.yaml"));
    assert_eq!(g["interval"], 30.0);
    assert_eq!(g["limit"], 0);
    assert!(g["lastEvaluation"]
        .as_str()
        .unwrap()
        .starts_with("1970-01-01T00:03:00"));
    let rec = &g["rules"][0];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["name"], "job:up:sum");
    assert_eq!(rec["health"], "ok");
    let alert = &g["rules"][1];
    assert_eq!(alert["type"], "alerting");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["duration"], 60.0);
    assert_eq!(alert["keepFiringFor"], 0.0);
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "{{ $labels.instance }} down");
    let a0 = &alert["alerts"][0];
    assert_eq!(a0["state"], "firing");
    assert_eq!(a0["value"], "0e+00");
    assert_eq!(a0["activeAt"], "1970-01-01T00:01:00Z");
    assert_eq!(a0["annotations"]["summary"], "a down");
    assert_eq!(a0["labels"]["alertname"], "Down");

    let (_, only_rec) = get(&format!("{base}/api/v1/rules?type=record")).await;
    assert_eq!(
        only_rec["data"]["groups"][0]["rules"].as_array().unwrap().len(),
        1
    );
    let (_, by_name) = get(&format!(
        "{base}/api/v1/rules?rule_name[]=Down&exclude_alerts=true"
    ))
    .await;
    let rules = by_name["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0]["alerts"].as_array().unwrap().is_empty());
    let (status, bad) = get(&format!("{base}/api/v1/rules?type=nope")).await;
    assert_eq!(status, 400);
    assert_eq!(bad["errorType"], "bad_data");

    let (status, alerts) = get(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(status, 200);
    let list = alerts["data"]["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["labels"]["instance"], "a");
    assert_eq!(list[0]["state"], "firing");
}

#[tokio::test]
async fn silences_api_create_list_get_expire() {
    let (base, _a, _dir) = serve().await;
    let client = reqwest::Client::new();
    let now = chrono::Utc::now();
    let body = json!({
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "createdBy": "ana",
        "comment": "db maintenance"
    });
    let r = client
        .post(format!("{base}/api/v2/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = get(&format!("{base}/api/v2/silences")).await;
    let s = &list[0];
    assert_eq!(s["id"], id);
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(s["createdBy"], "ana");
    assert_eq!(s["matchers"][0]["name"], "alertname");
    let (status, one) = get(&format!("{base}/api/v2/silence/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["comment"], "db maintenance");
    let r = client
        .delete(format!("{base}/api/v2/silence/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, one) = get(&format!("{base}/api/v2/silence/{id}")).await;
    assert_eq!(one["status"]["state"], "expired");

    let mut bad = body.clone();
    bad["comment"] = json!("");
    let r = client
        .post(format!("{base}/api/v2/silences"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("comment is missing"));
    let mut bad = body.clone();
    bad["endsAt"] = json!("tomorrow");
    let r = client
        .post(format!("{base}/api/v2/silences"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("\\\"tomorrow\\\""));
    let r = client
        .get(format!("{base}/api/v2/silence/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn reload_keeps_last_good_rules_and_history_is_served() {
    let (base, a, dir) = serve().await;
    let client = reqwest::Client::new();
    std::fs::write(
        dir.path().join("rules/bad.yaml"),
        "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n",
    )
    .unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("bad.yaml:4"), "{text}");
    assert!(text.contains("could not parse expression"), "{text}");
    assert_eq!(a.manager.groups().len(), 1);
    std::fs::remove_file(dir.path().join("rules/bad.yaml")).unwrap();
    let r = client.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    a.manager.stop_loops().await;
    let (status, h) = get(&format!("{base}/api/v1/notifications?limit=5")).await;
    assert_eq!(status, 200);
    assert!(h["data"].as_array().unwrap().is_empty());
    let (status, _) = get(&format!("{base}/api/v1/notifications?limit=x")).await;
    assert_eq!(status, 400);
}

#[test]
fn values_print_like_prometheus() {
    assert_eq!(super::rules::value_e(1.0), "1e+00");
    assert_eq!(super::rules::value_e(1234.5), "1.2345e+03");
    assert_eq!(super::rules::value_e(0.001), "1e-03");
    assert_eq!(super::rules::value_e(f64::INFINITY), "+Inf");
}

/// The credentials the server's former central table named for these paths, now declared by
/// [`super::router`] itself.
#[tokio::test]
async fn routes_declare_viewer_to_read_and_editor_to_change() {
    use axum::http::Method;
    use didban_auth::testing::Probe;
    use didban_auth::{Kind, Need, Role};

    let (_, a, _dir) = serve().await;
    let probe = Probe::new();
    let app = probe.wrap(super::router(a));
    let need = |method: Method, path: &'static str| {
        let (probe, app) = (&probe, &app);
        async move { probe.need(app, method, path).await }
    };
    assert_eq!(
        need(Method::POST, "/api/v2/silences").await,
        Need::Role(Role::Editor)
    );
    assert_eq!(
        need(Method::DELETE, "/api/v2/silence/x").await,
        Need::Role(Role::Editor)
    );
    assert_eq!(need(Method::POST, "/-/reload").await, Need::Role(Role::Editor));
    assert_eq!(
        need(Method::POST, "/api/v1/receivers/x/test").await,
        Need::Role(Role::Editor)
    );
    assert_eq!(
        need(Method::GET, "/api/v1/receivers").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(
        need(Method::GET, "/api/v2/silences").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(
        need(Method::GET, "/api/v2/silence/x").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(need(Method::GET, "/api/v1/rules").await, Need::Role(Role::Viewer));
    assert_eq!(
        need(Method::GET, "/api/v1/alerts").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(
        need(Method::GET, "/api/v1/notifications").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(probe.kind(&app, "/api/v1/alerts").await, Kind::Api);
}
