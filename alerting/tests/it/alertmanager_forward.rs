//! Alerts are forwarded to an external Alertmanager's v2 API (a real HTTP server here) in
//! its `postableAlert` shape.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use didban_alerting::notify::forward::AlertmanagerForwarder;
use didban_alerting::notify::{Alert, AlertSink};
use didban_store::Labels;
use didban_testkit::wait::{until_async, HANG};
use parking_lot::Mutex;
use serde_json::Value;

type Got = Arc<Mutex<Vec<Value>>>;

async fn receive(State(got): State<Got>, Json(v): Json<Value>) -> &'static str {
    got.lock().push(v);
    ""
}

#[tokio::test]
async fn alerts_reach_alertmanager_v2() {
    let got: Got = Arc::default();
    let app = Router::new()
        .route("/api/v2/alerts", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let fwd = AlertmanagerForwarder::new(vec![format!("http://{addr}/")], Duration::from_secs(5)).unwrap();
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), "down".to_string());
    fwd.send(
        vec![Alert {
            labels: Labels::from_pairs([("alertname", "Down"), ("job", "db")]),
            annotations,
            starts_at_ms: 0,
            ends_at_ms: 240_000,
            generator_url: "http://didban/graph".into(),
            value: 1.0,
        }],
        0,
    );
    // The forwarder posts in the background: wait for the request, however slow.
    until_async("the forwarded alert", HANG, || async {
        if got.lock().is_empty() {
            Err("nothing received".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let got = got.lock();
    assert_eq!(got.len(), 1);
    let a = &got[0][0];
    assert_eq!(a["labels"]["alertname"], "Down");
    assert_eq!(a["annotations"]["summary"], "down");
    assert_eq!(a["startsAt"], "1970-01-01T00:00:00Z");
    assert_eq!(a["endsAt"], "1970-01-01T00:04:00Z");
    assert_eq!(a["generatorURL"], "http://didban/graph");
}
