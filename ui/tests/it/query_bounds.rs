//! Page queries have the query API's bounds: a slot of the shared limiter (instant queries
//! in the light lane, range queries in the heavy one) and cancellation when the page's
//! request goes away.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use didban_store::promql::{Lane, PromqlError, QueryLimiter};

use crate::support::{get, test_ui};

#[tokio::test]
async fn page_queries_wait_in_the_limiters_lanes() {
    let mut ui = test_ui();
    // One slot per lane and no queue: a query finding its lane busy is refused at once.
    let limiter = Arc::new(QueryLimiter::new(1, 0));
    ui.ctx.query_limiter = limiter.clone();

    let light = limiter.admit(Lane::Light, None).await.unwrap();
    let (status, html) = get(&ui.ctx, "/explore?q=up&view=table").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("too many queries waiting"), "{html}");
    // The range query of the graph view is in the other lane.
    let (status, html) = get(&ui.ctx, "/explore?q=up&from=now-1h&to=now").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    drop(light);

    let heavy = limiter.admit(Lane::Heavy, None).await.unwrap();
    let (status, html) = get(&ui.ctx, "/explore?q=up&from=now-1h&to=now").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("too many queries waiting"), "{html}");
    let (status, html) = get(&ui.ctx, "/explore?q=up&view=table").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    drop(heavy);
    assert_eq!(limiter.stats().running, 0);
    assert_eq!(limiter.stats().rejected, 2);
}

#[tokio::test]
async fn a_dropped_page_query_cancels_its_evaluation() {
    let ui = test_ui();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<bool>();
    let ctx = ui.ctx.clone();
    let query = tokio::spawn(async move {
        ctx.bounded_query(Lane::Heavy, move |_db, _engine, ctl| {
            let _ = started_tx.send(());
            // Stands for a long evaluation: it runs until told to stop (or 60 s).
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while !ctl.is_cancelled() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = seen_tx.send(ctl.is_cancelled());
            Err(PromqlError::Cancelled)
        })
        .await
    });
    started_rx.await.unwrap();
    assert_eq!(ui.ctx.query_limiter.stats().running, 1);
    // The request goes away: its future is dropped.
    query.abort();
    let seen = tokio::task::spawn_blocking(move || seen_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(seen, Ok(true), "the evaluation was not told to stop");
}
