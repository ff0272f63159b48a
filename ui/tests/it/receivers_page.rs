//! The Receivers page over a real alert engine and a real webhook (an HTTP server in this
//! test): the "Send test notification" button delivers once and shows the outcome; a
//! webhook answering 500 shows its error in the result and in the history; viewers and
//! stale forms are refused.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use didban_alerting::eval::RuleStorage;
use didban_alerting::notify::config::{ReceiverConfig, RouteConfig, WebhookConfig};
use didban_alerting::{Alerting, AlertingSettings};
use didban_auth::{Role, Viewer};

use crate::support::{send, test_ui};

#[derive(Clone, Default)]
struct Hook {
    got: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
}

async fn receive(State(h): State<Hook>) -> (StatusCode, &'static str) {
    h.got.fetch_add(1, Ordering::SeqCst);
    let code = StatusCode::from_u16(h.status.load(Ordering::SeqCst)).unwrap();
    (code, "hook says no")
}

async fn hook() -> (String, Hook) {
    let h = Hook::default();
    h.status.store(200, Ordering::SeqCst);
    let app = Router::new().route("/hook", post(receive)).with_state(h.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), h)
}

fn form(body: &str, viewer: Viewer) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri("/alerts/receivers/test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut().insert(viewer);
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_button_delivers_and_failures_show_with_their_error() {
    let (url, h) = hook().await;
    let mut ui = test_ui();
    let settings = AlertingSettings {
        route: Some(RouteConfig {
            receiver: Some("ops".into()),
            ..RouteConfig::default()
        }),
        receivers: vec![ReceiverConfig {
            name: "ops".into(),
            webhook_configs: vec![WebhookConfig {
                url,
                ..WebhookConfig::default()
            }],
            ..ReceiverConfig::default()
        }],
        ..AlertingSettings::default()
    };
    let storage: Arc<dyn RuleStorage> = ui.ctx.db.clone();
    let a = Alerting::new(
        &settings,
        ui.dir.path(),
        "http://didban.test",
        storage,
        ui.ctx.engine.clone(),
        None,
    )
    .unwrap();
    ui.ctx.alerting = Some(a);
    let app = didban_ui::router(ui.ctx.clone());
    let editor = Viewer {
        user: Some("ana".into()),
        role: Role::Editor,
        csrf: "tok".into(),
    };

    let mut req = Request::get("/alerts/receivers").body(Body::empty()).unwrap();
    req.extensions_mut().insert(editor.clone());
    let (status, html, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Send test notification"), "{html}");
    assert!(html.contains("webhook[0]"), "{html}");

    let (status, html, _) = send(&app, form("_csrf=tok&receiver=ops", editor.clone())).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(h.got.load(Ordering::SeqCst), 1, "delivered exactly once");
    assert!(html.contains("DidbanTestNotification"), "{html}");
    assert!(html.contains("delivered"), "{html}");

    h.status.store(500, Ordering::SeqCst);
    let (status, html, _) = send(&app, form("_csrf=tok&receiver=ops", editor.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("answered 500"), "{html}");
    assert!(html.contains("hook says no"), "{html}");
    assert!(html.contains("(test)"), "the history marks tests: {html}");

    // A stale form and a viewer are refused without sending.
    let (status, _, _) = send(&app, form("_csrf=old&receiver=ops", editor.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut viewer = editor.clone();
    viewer.role = Role::Viewer;
    let (status, _, _) = send(&app, form("_csrf=tok&receiver=ops", viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.got.load(Ordering::SeqCst), 2);
    let (status, html, _) = send(&app, form("_csrf=tok&receiver=nobody", editor)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("no receiver named"), "{html}");
}
