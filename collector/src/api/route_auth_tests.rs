//! What the collector's routes need, declared where its routers are built ([`super::router`]
//! and the ingest routers): the credentials the server's former
//! central table named for these paths. Health (`/-/healthy`, `/-/ready`) is declared open in
//! `server.rs`; `tests/ui_auth.rs` checks it on the real server.
#![allow(clippy::unwrap_used)]

use axum::http::Method;
use axum::Router;
use didban_auth::testing::Probe;
use didban_auth::{Kind, Need, Role};
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest;
use crate::state::AppState;
use crate::stores::Stores;

/// The main port's collector routes and the OTLP/HTTP port's routes over fresh stores.
async fn routers(dir: &std::path::Path, public_metrics: bool) -> (Router, Router) {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.auth.public_metrics = public_metrics;
    // Opening the stores blocks (and must not run on a runtime thread).
    let state = tokio::task::spawn_blocking(move || AppState::new(Stores::open(&config).unwrap(), config))
        .await
        .unwrap();
    let (_, stop) = watch::channel(false);
    let main = super::router(state.clone(), stop).merge(ingest::remote_write_router(state.clone()));
    let otlp = ingest::otlp_http_router(state);
    (main, otlp)
}

#[tokio::test]
async fn routes_declare_ingest_viewer_admin_and_public_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::new();
    let (main, otlp) = routers(dir.path(), false).await;
    let (main, otlp) = (probe.wrap(main), probe.wrap(otlp));
    let need = |app: &'static str, method: Method, path: &'static str| {
        let (probe, app) = (&probe, if app == "otlp" { &otlp } else { &main });
        async move { probe.need(app, method, path).await }
    };
    assert_eq!(need("main", Method::POST, "/api/v1/write").await, Need::Ingest);
    assert_eq!(need("otlp", Method::POST, "/v1/traces").await, Need::Ingest);
    assert_eq!(need("otlp", Method::POST, "/v1/logs").await, Need::Ingest);
    assert_eq!(need("otlp", Method::POST, "/v1/metrics").await, Need::Ingest);
    assert_eq!(
        need("main", Method::GET, "/metrics").await,
        Need::Role(Role::Viewer)
    );
    for path in [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/query_exemplars",
        "/api/v1/format_query",
        "/api/v1/parse_query",
    ] {
        assert_eq!(
            need("main", Method::POST, path).await,
            Need::Role(Role::Viewer),
            "{path}"
        );
    }
    for path in [
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/flags",
        "/api/v1/status/tsdb",
        "/api/v1/targets",
        "/api/v1/targets/metadata",
    ] {
        assert_eq!(
            need("main", Method::GET, path).await,
            Need::Role(Role::Viewer),
            "{path}"
        );
    }
    assert_eq!(
        need("main", Method::GET, "/api/traces/abc").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(
        need("main", Method::GET, "/api/logs/search").await,
        Need::Role(Role::Viewer)
    );
    assert_eq!(
        need("main", Method::POST, "/api/v1/admin/tsdb/flush").await,
        Need::Role(Role::Admin)
    );
    assert_eq!(probe.kind(&main, "/api/v1/query").await, Kind::Api);
    assert_eq!(probe.kind(&main, "/metrics").await, Kind::Api);

    let dir = tempfile::tempdir().unwrap();
    let (public, _) = routers(dir.path(), true).await;
    let public = probe.wrap(public);
    assert_eq!(probe.need(&public, Method::GET, "/metrics").await, Need::Open);
    assert_eq!(
        probe.need(&public, Method::GET, "/api/v1/query").await,
        Need::Role(Role::Viewer)
    );
}
