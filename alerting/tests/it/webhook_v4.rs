//! The webhook receives Alertmanager's v4 payload exactly: checked field by field on a real
//! HTTP server, with the HMAC-SHA256 signature verified independently and the bearer token.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use didban_alerting::notify::{Alert, AlertSink, Notifier, NotifyConfig, RetryPolicy};
use didban_store::Labels;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::Sha256;

type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> &'static str {
    got.lock().push((headers, body));
    "ok"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn server() -> (String, Got) {
    let got: Got = Arc::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/slow", post(slow))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

fn alert(instance: &str, starts: i64, ends: i64) -> Alert {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), "disk full".to_string());
    annotations.insert("runbook".to_string(), format!("https://runbooks/{instance}"));
    Alert {
        labels: Labels::from_pairs([
            ("alertname", "DiskFull"),
            ("instance", instance),
            ("severity", "page"),
        ]),
        annotations,
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: "http://didban:9480/graph?g0.expr=disk%20%3E%200.9&g0.tab=1".into(),
        value: 0.95,
    }
}

fn notifier(yaml: &str) -> Notifier {
    let cfg: NotifyConfig = serde_yaml::from_str(yaml).unwrap();
    Notifier::new(&cfg, None, "http://didban:9480")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 1,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        })
}

#[tokio::test]
async fn payload_is_alertmanager_v4_field_by_field_and_signed() {
    let (base, got) = server().await;
    let n = notifier(&format!(
        r#"
route: {{receiver: hook, group_by: [alertname], group_wait: 0s}}
receivers:
  - name: hook
    webhook_configs:
      - url: {base}/hook
        bearer_token: t0ken
        hmac_secret: "shared secret"
        max_alerts: 2
"#
    ));
    let t0 = 1_764_115_200_000; // 2025-11-26T00:00:00Z
    n.send(
        vec![
            alert("a", t0, t0 + 3_600_000),
            alert("b", t0 + 1_500, t0 + 3_600_000),
            alert("c", t0, t0 + 5_000),
        ],
        t0 + 10_000,
    );
    n.tick(t0 + 10_000).await;
    let got = got.lock();
    assert_eq!(got.len(), 1);
    let (headers, raw) = &got[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["authorization"], "Bearer t0ken");
    // The receiver's recipe: the timestamp is recent, and the signature covers `<ts>.<body>`.
    let ts = headers["x-didban-timestamp"].to_str().unwrap();
    let secs: i64 = ts.parse().unwrap();
    let now = didban_base::now_ms() / 1000;
    assert!(
        (now - secs).abs() <= 300,
        "timestamp {secs} is the send time (now {now})"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(b"shared secret").unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(raw);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-didban-signature"].to_str().unwrap(), want);
    // A replay with another timestamp does not verify: the old body-only signature differs.
    let mut body_only = Hmac::<Sha256>::new_from_slice(b"shared secret").unwrap();
    body_only.update(raw);
    let old = format!("sha256={}", hex::encode(body_only.finalize().into_bytes()));
    assert_ne!(headers["x-didban-signature"].to_str().unwrap(), old);

    let body: Value = serde_json::from_slice(raw).unwrap();
    let obj = body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "alerts",
            "commonAnnotations",
            "commonLabels",
            "externalURL",
            "groupKey",
            "groupLabels",
            "receiver",
            "status",
            "truncatedAlerts",
            "version"
        ]
    );
    assert_eq!(body["version"], "4");
    assert_eq!(body["groupKey"], "{}:{alertname=\"DiskFull\"}");
    assert_eq!(body["truncatedAlerts"], 1);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["groupLabels"], serde_json::json!({"alertname": "DiskFull"}));
    assert_eq!(
        body["commonLabels"],
        serde_json::json!({"alertname": "DiskFull", "severity": "page"})
    );
    assert_eq!(
        body["commonAnnotations"],
        serde_json::json!({"summary": "disk full"})
    );
    assert_eq!(body["externalURL"], "http://didban:9480");
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    for a in alerts {
        let mut k: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort();
        assert_eq!(
            k,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
        let fp = a["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 16);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            a["generatorURL"],
            "http://didban:9480/graph?g0.expr=disk%20%3E%200.9&g0.tab=1"
        );
    }
    let a = &alerts[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["instance"], "a");
    assert_eq!(a["annotations"]["runbook"], "https://runbooks/a");
    assert_eq!(a["startsAt"], "2025-11-26T00:00:00Z");
    assert_eq!(a["endsAt"], "2025-11-26T01:00:00Z");
    assert_eq!(alerts[1]["startsAt"], "2025-11-26T00:00:01.5Z");
    assert_ne!(alerts[0]["fingerprint"], alerts[1]["fingerprint"]);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_reported() {
    let (base, _) = server().await;
    let n = notifier(&format!(
        r#"
route: {{receiver: slow, group_wait: 0s, routes: [{{matchers: ['instance="x"'], receiver: closed}}]}}
receivers:
  - name: slow
    webhook_configs: [{{url: "{base}/slow", timeout: 200ms}}]
  - name: closed
    webhook_configs: [{{url: "http://127.0.0.1:1/hook"}}]
"#
    ));
    n.send(vec![alert("a", 0, i64::MAX / 2), alert("x", 0, i64::MAX / 2)], 1);
    n.tick(1).await;
    let h = n.log.history(10);
    assert_eq!(h.len(), 2);
    for item in &h {
        assert!(!item.ok);
        let e = item.error.as_deref().unwrap();
        assert!(e.starts_with("POST http://127.0.0.1:"), "{e}");
    }
}
