//! The home page's figures over the cluster. An ingester answers
//! `POST /internal/v1/figures` with the counts of what it holds unpublished (series in its
//! metric heads, spans in its span heads, records of its unsealed log days: its own
//! stores' figures, read without a query); a querier adds them to its own figures, which
//! count the published span blocks and sealed log days it lists from the metastore.
//!
//! The page must stay cheap and up: each ingester is asked once with a short timeout
//! ([`FIGURES_TIMEOUT`]), and one that does not answer is listed on the page, not counted,
//! instead of failing it. The sums are figures, not reads: a series two replicas hold
//! counts twice, and a span block being published may count in a head and in the bucket
//! for a moment.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use didban_auth::{Need, Require};
use didban_ui::signal_reads::{Asked, FigureReads, Figures, LocalFigures};
use serde::{Deserialize, Serialize};

use super::reader::{ClusterReader, IngesterError};

/// The path of the internal figures API.
pub const FIGURES_PATH: &str = "/internal/v1/figures";

/// How long the home page waits for an ingester's figures.
pub const FIGURES_TIMEOUT: Duration = Duration::from_secs(1);

/// An ingester's answer: what it holds that the bucket does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpublished {
    /// Series in its metric heads.
    pub head_series: u64,
    /// Spans in its span heads.
    pub head_spans: u64,
    /// Searchable records of its unsealed log days.
    pub log_records: u64,
}

/// The internal figures API of an ingester (open to the user guard; the handler checks
/// the cluster secret itself).
pub fn router(local: LocalFigures, secret: &str) -> Router {
    Router::new()
        .route(FIGURES_PATH, post(answer))
        .route_layer(Require::api(Need::Open))
        .with_state((local, Arc::<str>::from(secret)))
}

async fn answer(State((local, secret)): State<(LocalFigures, Arc<str>)>, headers: HeaderMap) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &secret) {
        return refused;
    }
    Json(Unpublished {
        head_series: local.db.stats().head_series,
        head_spans: local.traces.stats().head_spans,
        log_records: local.logs.stats().committed_records,
    })
    .into_response()
}

/// The home page's figures of a process: its own, plus on a querier every live
/// ingester's unpublished counts.
#[derive(Clone)]
pub struct ClusterFigures {
    local: LocalFigures,
    cluster: Option<Arc<ClusterReader>>,
}

impl ClusterFigures {
    /// Figures of `local`, and with `cluster` of every live ingester too.
    pub fn new(local: LocalFigures, cluster: Option<Arc<ClusterReader>>) -> ClusterFigures {
        ClusterFigures { local, cluster }
    }
}

impl FigureReads for ClusterFigures {
    fn figures(&self) -> Figures {
        let mut figures = self.local.figures();
        let Some(cluster) = &self.cluster else {
            return figures;
        };
        let mut asked = Asked::default();
        for answer in cluster.ask_each_within(FIGURES_PATH, b"{}".to_vec(), FIGURES_TIMEOUT) {
            let decoded = answer.and_then(|(member, bytes)| {
                serde_json::from_slice::<Unpublished>(&bytes)
                    .map_err(|e| IngesterError::of(&member, format!("undecodable figures: {e}")))
            });
            match decoded {
                Ok(u) => {
                    asked.answered += 1;
                    figures.active_series += u.head_series;
                    figures.spans += u.head_spans;
                    figures.log_records += u.log_records;
                }
                Err(e) => asked.silent.push(e.message),
            }
        }
        figures.ingesters = Some(asked);
        figures
    }
}
