//! Receivers you can trust: a test notification through the HTTP API reaches a real SMTP
//! server and a real webhook exactly once with the test labels; a webhook answering 500
//! shows in the history with its error text and every attempt, and is counted as failed;
//! a reload of the server's TOML file moves notifications to a new webhook and a bad file
//! is refused with the old receivers kept.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use didban_alerting::eval::MemRuleStorage;
use didban_alerting::notify::{Alert, AlertSink, Notifier, RetryPolicy};
use didban_alerting::{Alerting, AlertingSettings};
use didban_store::promql::{Engine, EngineOptions, MemStorage};
use didban_store::Labels;
use didban_testkit::smtp::Smtp;
use parking_lot::Mutex;
use serde_json::Value;

/// A webhook receiver: keeps the bodies it got, answers with `status` (and "boom" when it
/// is an error).
#[derive(Clone, Default)]
struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(h): State<Hook>, body: String) -> (StatusCode, &'static str) {
    h.bodies.lock().push(serde_json::from_str(&body).unwrap());
    let code = StatusCode::from_u16(h.status.load(Ordering::SeqCst)).unwrap();
    (code, if code.is_success() { "ok" } else { "boom" })
}

async fn hook_server(status: u16) -> (String, Hook) {
    let hook = Hook::default();
    hook.status.store(status, Ordering::SeqCst);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), hook)
}

/// The engine over an empty store, configured by the `[alerting]` TOML in `path`, with
/// its HTTP API on a free port.
async fn engine(path: &Path, data: &Path) -> (String, Arc<Alerting>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let mut settings: AlertingSettings = table.remove("alerting").unwrap().try_into().unwrap();
    settings.source_file = Some(path.to_path_buf());
    let storage = Arc::new(MemRuleStorage::new(MemStorage::new()));
    let a = Alerting::new(
        &settings,
        data,
        "http://didban:9480",
        storage,
        Arc::new(Engine::new(EngineOptions::default())),
        None,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = didban_alerting::http::router(a.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), a)
}

fn mails(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(maildir.join("new")) {
        for e in rd {
            out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
    }
    out
}

async fn post_empty(url: &str) -> (u16, Value) {
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn test_notification_arrives_once_by_mail_and_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = Smtp::start(&maildir);
    let (url, hook) = hook_server(200).await;
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting.global]
smtp_from = "didban@example.com"
smtp_smarthost = "127.0.0.1:{}"
[alerting.route]
receiver = "ops"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{url}"
[[alerting.receivers.email_configs]]
to = "oncall@example.com"
tls = "none"
"#,
            smtp.port
        ),
    )
    .unwrap();
    let (base, a) = engine(&config, dir.path()).await;

    let (status, body) = post_empty(&format!("{base}/api/v1/receivers/ops/test")).await;
    assert_eq!(status, 200, "{body}");
    let results = body["data"]["integrations"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert!(results.iter().all(|r| r["ok"] == true), "{body}");

    // Exactly once each, with the test labels.
    let bodies = hook.bodies.lock().clone();
    assert_eq!(bodies.len(), 1);
    let alert = &bodies[0]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "DidbanTestNotification");
    assert_eq!(alert["labels"]["receiver"], "ops");
    assert_eq!(alert["status"], "firing");
    assert_eq!(bodies[0]["receiver"], "ops");
    let got = mails(&maildir);
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("DidbanTestNotification"), "{}", got[0]);
    assert!(got[0].contains("To: oncall@example.com"), "{}", got[0]);

    // The history and the counters know it was a test.
    let h = get(&format!("{base}/api/v1/notifications")).await;
    let items = h["data"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{h}");
    for item in items {
        assert_eq!(item["test"], true);
        assert_eq!(item["ok"], true);
        assert_eq!(item["alertnames"][0], "DidbanTestNotification");
    }
    assert_eq!(a.notifier.metrics.counts("ops", "webhook").total, 1);
    assert_eq!(a.notifier.metrics.counts("ops", "email").total, 1);

    // An unknown receiver is a 404 naming the ones there are.
    let (status, body) = post_empty(&format!("{base}/api/v1/receivers/nobody/test")).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("ops"), "{body}");
}

fn alert(name: &str, now: i64) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", name), ("severity", "critical")]),
        annotations: BTreeMap::new(),
        starts_at_ms: now,
        ends_at_ms: now + 3_600_000,
        generator_url: String::new(),
        value: 1.0,
    }
}

#[tokio::test]
async fn failing_webhook_is_in_the_history_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (url, hook) = hook_server(500).await;
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting.route]
receiver = "ops"
group_wait = "0s"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{url}"
"#
        ),
    )
    .unwrap();
    let (base, a) = engine(&config, dir.path()).await;
    // A notifier over the same file, with a quick retry policy.
    let cfg = didban_alerting::notify::reread::notify_config(&a_settings(&config)).unwrap();
    let notifier = Notifier::new(&cfg, None, "http://didban:9480")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    let now = didban_base::now_ms();
    notifier.send(vec![alert("PostgresDown", now)], now);
    notifier.tick(now).await;
    assert_eq!(hook.bodies.lock().len(), 3, "retried twice");
    let h = notifier.log.history(10);
    assert_eq!(h.len(), 1);
    assert!(!h[0].ok);
    assert_eq!(h[0].attempts, 3);
    assert_eq!(h[0].tries.len(), 3);
    assert_eq!(h[0].alertnames, vec!["PostgresDown".to_string()]);
    let e = h[0].error.as_deref().unwrap();
    assert!(e.contains("answered 500") && e.contains("boom"), "{e}");
    let c = notifier.metrics.counts("ops", "webhook");
    assert_eq!((c.total, c.failed), (3, 3));

    // Through the API: the test is refused with the receiver's error, counted and listed.
    let (status, body) = post_empty(&format!("{base}/api/v1/receivers/ops/test")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("boom"), "{body}");
    assert_eq!(body["data"]["integrations"][0]["ok"], false);
    let r = get(&format!("{base}/api/v1/receivers")).await;
    let integ = &r["data"]["receivers"][0]["integrations"][0];
    assert_eq!(integ["name"], "webhook[0]");
    assert_eq!(integ["failedTotal"], 1, "{r}");
    let n = get(&format!("{base}/api/v1/notifications")).await;
    assert_eq!(n["data"][0]["ok"], false);
    assert!(n["data"][0]["error"].as_str().unwrap().contains("500"), "{n}");
    assert_eq!(a.notifier.metrics.counts("ops", "webhook").failed, 1);
}

fn a_settings(config: &Path) -> AlertingSettings {
    AlertingSettings {
        source_file: Some(config.to_path_buf()),
        ..AlertingSettings::default()
    }
}

fn webhook_toml(receiver: &str, url: &str) -> String {
    format!(
        r#"
[alerting.route]
receiver = "{receiver}"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
[[alerting.receivers]]
name = "{receiver}"
[[alerting.receivers.webhook_configs]]
url = "{url}"
"#
    )
}

#[tokio::test]
async fn reload_moves_notifications_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let (old_url, old) = hook_server(200).await;
    let (new_url, new) = hook_server(200).await;
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, webhook_toml("ops", &old_url)).unwrap();
    let (base, a) = engine(&config, dir.path()).await;
    let now = didban_base::now_ms();
    a.notifier.send(vec![alert("First", now)], now);
    a.notifier.tick(now).await;
    assert_eq!(old.bodies.lock().len(), 1);

    // Same receiver name, new URL: a new alert in the same group goes to the new URL, and
    // the first one is not paged again (the log is kept).
    std::fs::write(&config, webhook_toml("ops", &new_url)).unwrap();
    a.reload().await.unwrap();
    let now = now + 2_000;
    a.notifier
        .send(vec![alert("First", now - 2_000), alert("Second", now)], now);
    a.notifier.tick(now).await;
    assert_eq!(old.bodies.lock().len(), 1);
    let bodies = new.bodies.lock().clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["alerts"].as_array().unwrap().len(), 2);
    assert!(a.notifier.metrics.reload_status().ok);

    // A route naming a receiver that does not exist: refused, old config kept, visible.
    std::fs::write(
        &config,
        webhook_toml("ops", &old_url).replace("receiver = \"ops\"", "receiver = \"gone\""),
    )
    .unwrap();
    let e = a.reload().await.unwrap_err().to_string();
    assert!(e.contains("\"gone\""), "{e}");
    let r = get(&format!("{base}/api/v1/receivers")).await;
    assert_eq!(r["data"]["lastReload"]["successful"], false, "{r}");
    assert!(
        r["data"]["lastReload"]["error"]
            .as_str()
            .unwrap()
            .contains("gone"),
        "{r}"
    );
    let now = now + 2_000;
    a.notifier.send(vec![alert("Third", now)], now);
    a.notifier.tick(now).await;
    assert_eq!(old.bodies.lock().len(), 1, "the bad file's URL is not used");
    assert_eq!(new.bodies.lock().len(), 2);
}
