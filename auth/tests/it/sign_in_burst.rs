//! The issue-13 burst against the real router layers: 64 concurrent wrong basic-auth
//! requests from one address are answered with at most the rate limit's worth of Argon2
//! verifications; the rest get 429 with `Retry-After` at once. A right password from
//! another address still gets in afterwards.
//!
//! It reads the process-wide count of Argon2 runs: it relies on running in a process of
//! its own, as under cargo-nextest (`scripts/test.sh`); it is the crate's only test so far.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use didban_auth::password::{
    peak_concurrent_verifications, verifications_started, MAX_CONCURRENT_VERIFICATIONS,
};
use didban_auth::{resolve, Auth, AuthSettings, Need, Require, Role};
use tower::ServiceExt;

/// The limit `Auth::open` gives its rate limiter (failures per address per window).
const LIMIT: usize = 10;

fn request(peer: [u8; 4], user: &str, pass: &str) -> Request {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut r = Request::builder()
        .uri("/api/v1/thing")
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .body(Body::empty())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40_000))));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_passwords_costs_at_most_the_limit_in_verifications() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::open(dir.path(), AuthSettings::default()).unwrap();
    auth.users()
        .create("grafana", Role::Viewer, "the right password", 0)
        .unwrap();
    let app: Router = Router::new()
        .route("/api/v1/thing", get(|| async { "ok" }))
        .route_layer(Require::api(Need::Role(Role::Viewer)))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&auth), resolve));

    let before = verifications_started();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = app
                    .oneshot(request([192, 0, 2, 1], "grafana", &format!("wrong {i}")))
                    .await
                    .unwrap();
                let retry = r
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                (r.status(), retry)
            })
        })
        .collect();
    let (mut wrong, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::UNAUTHORIZED, _) => wrong += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some(s)) if s >= 1 => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let verified = verifications_started() - before;
    assert!(verified <= LIMIT, "{verified} verifications for one address");
    assert_eq!(wrong, verified, "each verification answered 401");
    assert_eq!(wrong + limited, 64);
    assert!(limited >= 64 - LIMIT, "{limited} refused with 429");
    let peak = peak_concurrent_verifications();
    assert!(peak <= MAX_CONCURRENT_VERIFICATIONS, "peak {peak}");

    // The address stays refused without a verification, even with the right password...
    let r = app
        .clone()
        .oneshot(request([192, 0, 2, 1], "grafana", "the right password"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(verifications_started() - before, verified);
    // ...while another address signs in.
    let r = app
        .oneshot(request([192, 0, 2, 2], "grafana", "the right password"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
