#![allow(clippy::unwrap_used)]
//! Dispatcher semantics against a real HTTP server receiving the webhook.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use didban_store::Labels;
use parking_lot::Mutex;

use super::silence::{Silence, SilenceMatcher};
use super::*;

const SEC: i64 = 1000;

#[derive(Default)]
struct Hook {
    bodies: Mutex<Vec<(HeaderMap, serde_json::Value)>>,
    fail_next: AtomicUsize,
}

async fn receive(State(h): State<Arc<Hook>>, headers: HeaderMap, body: String) -> StatusCode {
    if h.fail_next.load(Ordering::SeqCst) > 0 {
        h.fail_next.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    h.bodies
        .lock()
        .push((headers, serde_json::from_str(&body).unwrap()));
    StatusCode::OK
}

async fn hook_server() -> (String, Arc<Hook>) {
    let hook = Arc::new(Hook::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), hook)
}

fn config(url: &str) -> NotifyConfig {
    let yaml = format!(
        r#"
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - matchers: ['team="nobody"']
      receiver: quiet
receivers:
  - name: ops
    webhook_configs:
      - url: {url}
        hmac_secret: s3cret
        bearer_token: tok
  - name: quiet
    webhook_configs:
      - url: {url}
        send_resolved: false
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
"#
    );
    let cfg: NotifyConfig = serde_yaml::from_str(&yaml).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn alert(name: &str, instance: &str, severity: &str, starts: i64, ends: i64) -> Alert {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), format!("{instance} is down"));
    Alert {
        labels: Labels::from_pairs([
            ("alertname", name),
            ("instance", instance),
            ("severity", severity),
        ]),
        annotations,
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: "http://didban/graph?g0.expr=up".into(),
        value: 1.0,
    }
}

fn notifier(url: &str, dir: &std::path::Path) -> Notifier {
    Notifier::new(&config(url), Some(dir), "http://didban:9480")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        })
}

fn count(h: &Hook) -> usize {
    h.bodies.lock().len()
}

#[tokio::test]
async fn group_wait_grouping_resolve_and_repeat() {
    let (url, hook) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&url, dir.path());
    let t0 = 1_700_000_000_000;
    n.send(vec![alert("Down", "a", "critical", t0, t0 + 240 * SEC)], t0);
    n.send(vec![alert("Down", "b", "critical", t0, t0 + 240 * SEC)], t0 + SEC);
    n.tick(t0 + 5 * SEC).await;
    assert_eq!(count(&hook), 0, "group_wait not over");
    n.tick(t0 + 10 * SEC).await;
    assert_eq!(count(&hook), 1, "both alerts in one notification");
    {
        let bodies = hook.bodies.lock();
        let (headers, body) = &bodies[0];
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupLabels"]["alertname"], "Down");
        assert_eq!(body["commonLabels"]["severity"], "critical");
        assert!(body["commonLabels"].get("instance").is_none());
        assert_eq!(headers["authorization"], "Bearer tok");
        assert!(headers["x-didban-signature"]
            .to_str()
            .unwrap()
            .starts_with("sha256="));
    }
    // Nothing changed: no resend at the next group_interval.
    n.send(
        vec![alert("Down", "a", "critical", t0, t0 + 300 * SEC)],
        t0 + 60 * SEC,
    );
    n.tick(t0 + 70 * SEC).await;
    assert_eq!(count(&hook), 1);
    // One resolves: notified (send_resolved defaults to true for webhooks).
    n.send(
        vec![alert("Down", "b", "critical", t0, t0 + 80 * SEC)],
        t0 + 80 * SEC,
    );
    n.tick(t0 + 131 * SEC).await;
    assert_eq!(count(&hook), 2);
    {
        let bodies = hook.bodies.lock();
        let alerts = bodies[1].1["alerts"].as_array().unwrap().clone();
        let b = alerts.iter().find(|a| a["labels"]["instance"] == "b").unwrap();
        assert_eq!(b["status"], "resolved");
        assert_eq!(bodies[1].1["status"], "firing", "a still fires");
    }
    // repeat_interval re-sends the unchanged firing alert.
    let later = t0 + 131 * SEC + 3600 * SEC;
    n.send(
        vec![alert("Down", "a", "critical", t0, later + 240 * SEC)],
        later - SEC,
    );
    n.tick(later).await;
    assert_eq!(count(&hook), 3);
    assert_eq!(
        hook.bodies.lock()[2].1["alerts"].as_array().unwrap().len(),
        1,
        "resolved b left the group"
    );
    let history = n.log.history(10);
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|h| h.ok && h.receiver == "ops"));
}

#[tokio::test]
async fn silences_suppress_and_expiry_restores() {
    let (url, hook) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&url, dir.path());
    let t0 = 1_700_000_000_000;
    let id = n
        .silences
        .upsert(
            Silence {
                id: String::new(),
                matchers: vec![SilenceMatcher {
                    name: "instance".into(),
                    value: "a".into(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at_ms: t0,
                ends_at_ms: t0 + 3600 * SEC,
                updated_at_ms: 0,
                created_by: "me".into(),
                comment: "maint".into(),
            },
            t0,
        )
        .unwrap();
    n.send(vec![alert("Down", "a", "critical", t0, t0 + 3600 * SEC)], t0);
    n.tick(t0 + 10 * SEC).await;
    assert_eq!(count(&hook), 0, "silenced");
    n.silences.expire(&id, t0 + 20 * SEC).unwrap();
    n.tick(t0 + 70 * SEC).await;
    assert_eq!(count(&hook), 1, "expiry restores the notification");
}

#[tokio::test]
async fn inhibition_mutes_warning_when_critical_fires() {
    let (url, hook) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&url, dir.path());
    let t0 = 1_700_000_000_000;
    n.send(
        vec![
            alert("Down", "a", "critical", t0, t0 + 3600 * SEC),
            alert("Slow", "a", "warning", t0, t0 + 3600 * SEC),
            alert("Slow", "b", "warning", t0, t0 + 3600 * SEC),
        ],
        t0,
    );
    n.tick(t0 + 10 * SEC).await;
    let bodies = hook.bodies.lock();
    assert_eq!(bodies.len(), 2, "one per group (Down, Slow)");
    let slow = bodies
        .iter()
        .find(|(_, b)| b["groupLabels"]["alertname"] == "Slow")
        .unwrap();
    let alerts = slow.1["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["labels"]["instance"], "b");
}

#[tokio::test]
async fn restart_does_not_resend_and_retries_back_off() {
    let (url, hook) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    {
        let n = notifier(&url, dir.path());
        hook.fail_next.store(2, Ordering::SeqCst);
        n.send(vec![alert("Down", "a", "critical", t0, t0 + 3600 * SEC)], t0);
        n.tick(t0 + 10 * SEC).await;
        assert_eq!(count(&hook), 1, "delivered on the third attempt");
        assert_eq!(n.log.history(1)[0].attempts, 3);
    }
    let n = notifier(&url, dir.path());
    n.send(
        vec![alert("Down", "a", "critical", t0, t0 + 3600 * SEC)],
        t0 + 60 * SEC,
    );
    n.tick(t0 + 70 * SEC).await;
    assert_eq!(count(&hook), 1, "the persisted log prevents a second page");
    n.send(
        vec![alert("Down", "a", "critical", t0, t0 + 80 * SEC)],
        t0 + 80 * SEC,
    );
    n.tick(t0 + 131 * SEC).await;
    assert_eq!(count(&hook), 2, "but the resolution is sent");
    assert_eq!(hook.bodies.lock()[1].1["status"], "resolved");

    // A receiver that keeps failing: attempts are bounded and the failure is in the history.
    hook.fail_next.store(100, Ordering::SeqCst);
    n.send(
        vec![alert("Other", "x", "critical", t0, t0 + 3600 * SEC)],
        t0 + 200 * SEC,
    );
    n.tick(t0 + 210 * SEC).await;
    let h = n.log.history(1);
    assert!(!h[0].ok);
    assert_eq!(h[0].attempts, 3);
    assert!(h[0].error.as_deref().unwrap().contains("503"), "{:?}", h[0].error);
}

#[tokio::test]
async fn send_resolved_false_and_dedup_per_receiver() {
    let (url, hook) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&url, dir.path());
    let t0 = 1_700_000_000_000;
    let mut a = alert("Q", "a", "info", t0, t0 + 3600 * SEC);
    a.labels = a.labels.with("team", "nobody");
    n.send(vec![a.clone()], t0);
    n.tick(t0 + 10 * SEC).await;
    assert_eq!(count(&hook), 1);
    assert_eq!(hook.bodies.lock()[0].1["receiver"], "quiet");
    a.ends_at_ms = t0 + 20 * SEC;
    n.send(vec![a], t0 + 20 * SEC);
    n.tick(t0 + 70 * SEC).await;
    assert_eq!(count(&hook), 1, "send_resolved: false");
    assert_eq!(n.group_count(), 0, "the resolved group is gone");
}

#[test]
fn times_print_like_go() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500));
    assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
}
