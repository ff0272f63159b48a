//! Shared by the UI integration tests: a [`UiContext`] over real stores (metrics, logs,
//! traces) in a temporary directory, sample appends, and a GET through the real router.
//! Use it from a test module with `use crate::support::…`.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use didban_store::logs::{LogOptions, LogStore};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::traces::{TraceOptions, TraceStore};
use didban_store::{Db, DbOptions, ExemplarOptions, ExemplarStore, Labels, Sample, SeriesSamples};
use didban_ui::UiContext;
use tower::ServiceExt;

/// A context over fresh stores; the stores live as long as `dir`.
pub struct TestUi {
    /// What the router gets.
    pub ctx: UiContext,
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

/// Opens empty stores in a new temporary directory. Call inside a Tokio runtime.
pub fn test_ui() -> TestUi {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(DbOptions::new(dir.path())).unwrap();
    let logs = LogStore::open(LogOptions::new(dir.path())).unwrap();
    let traces = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    let db = Arc::new(db);
    let logs = Arc::new(logs);
    let traces = Arc::new(traces);
    let ctx = UiContext {
        reader: db.clone(),
        figures: std::sync::Arc::new(didban_ui::signal_reads::LocalFigures {
            db: db.clone(),
            traces: traces.clone(),
            logs: logs.clone(),
        }),
        db,
        engine: Arc::new(Engine::new(EngineOptions::default())),
        query_limiter: Arc::new(didban_store::promql::QueryLimiter::new(4, 64)),
        query_timeout: std::time::Duration::from_secs(120),
        log_reads: logs.clone(),
        logs,
        trace_reads: traces.clone(),
        traces,
        exemplars: Arc::new(ExemplarStore::open(ExemplarOptions::new(dir.path())).unwrap()),
        alerting: None,
        data_dir: dir.path().to_path_buf(),
        dashboard_dirs: Vec::new(),
    };
    TestUi { ctx, dir }
}

pub use didban_base::now_ms;

/// Appends `points` to the series `labels` (name included as `__name__`).
pub async fn append(ctx: &UiContext, labels: &[(&str, &str)], points: &[(i64, f64)]) {
    let series = SeriesSamples {
        labels: Labels::from_pairs(labels.iter().copied()),
        samples: points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        histograms: Vec::new(),
    };
    let report = ctx.db.append(vec![series]).await.unwrap();
    assert_eq!(report.accepted as usize, points.len(), "{report:?}");
}

/// GETs `uri` from the UI router over `ctx`: status and body text.
pub async fn get(ctx: &UiContext, uri: &str) -> (StatusCode, String) {
    let router = didban_ui::router(ctx.clone());
    let response = router
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `text` percent-encoded for a query string value.
pub fn enc(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_string()
}

/// Sends `req` through `app`: status, body text and the `Location` header if any.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, Option<String>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap(), location)
}
