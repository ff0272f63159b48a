//! Didban web UI: pages rendered on the server with Leptos (SSR only, no WebAssembly), SVG
//! charts drawn from downsampled series, and one small script of our own that enhances the
//! pages (cross-hair, drag-to-zoom, auto-refresh). Every page is complete HTML and works
//! without JavaScript; all view state lives in the URL.
//!
//! The collector builds a [`UiContext`] over its stores and merges [`router`] (and
//! [`pages::account::router`], the sign-in and admin pages) into the HTTP listener that also
//! serves the query APIs. Each router declares what its pages need with `didban_auth`'s
//! route layers.

#![warn(missing_docs)]

pub mod assets;
pub mod chart;
pub mod dashboard;
pub mod downsample;
pub mod exemplars;
pub mod pages;
pub mod query;
pub mod shell;
pub mod signal_reads;
pub mod timerange;
pub mod units;
pub mod viewer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use didban_alerting::Alerting;
use didban_store::logs::LogStore;
use didban_store::promql::{Engine, QueryLimiter};
use didban_store::traces::TraceStore;
use didban_store::Db;

/// Everything the pages read: the metric database and its PromQL engine, the log and trace
/// stores, the alert engine when enabled, and the data directory (where dashboards saved from
/// the UI live). Cheap to clone.
#[derive(Clone)]
pub struct UiContext {
    /// Time series (this process's own database: head figures, cardinality).
    pub db: Arc<Db>,
    /// What page queries read: `db`, or on a querier the blocks plus the live ingesters'
    /// heads.
    pub reader: Arc<dyn didban_store::Queryable>,
    /// PromQL over `reader`.
    pub engine: Arc<Engine>,
    /// The query API's admission gate: page queries take a slot of it too (instant queries
    /// the light lane, range queries the heavy one), so pages cannot bypass the bound.
    pub query_limiter: Arc<QueryLimiter>,
    /// How long one page query may take, queueing for a slot included (`query.timeout`).
    pub query_timeout: Duration,
    /// Log records (Tantivy): this process's own store (figures, live tail).
    pub logs: Arc<LogStore>,
    /// Spans (Parquet blocks and head): this process's own store (figures).
    pub traces: Arc<TraceStore>,
    /// What the trace pages read: `traces`, or on a querier the span blocks plus every
    /// live ingester's unpublished spans.
    pub trace_reads: Arc<dyn signal_reads::TraceReads>,
    /// What the log pages read: `logs`, or on a querier the sealed days plus every live
    /// ingester's unpublished records.
    pub log_reads: Arc<dyn signal_reads::LogReads>,
    /// What the home page's figures count: this process's stores, or on a querier the
    /// published blocks plus every live ingester's heads.
    pub figures: Arc<dyn signal_reads::FigureReads>,
    /// Exemplars (trace pointers of samples), drawn as dots that open their trace: this
    /// process's store, or on a querier every live ingester's too.
    pub exemplars: Arc<dyn signal_reads::ExemplarReads>,
    /// Rules, alerts, silences and notifications; `None` when alerting is disabled.
    pub alerting: Option<Arc<Alerting>>,
    /// The server's data directory.
    pub data_dir: PathBuf,
    /// Directories with provisioned dashboard YAML files (read-only in the UI).
    pub dashboard_dirs: Vec<PathBuf>,
}

/// All UI routes (pages under `/`, static assets under `/ui/static/`), with `ctx` as state.
/// The sign-in and admin pages are [`pages::account::router`]: they need the server's
/// [`didban_auth::Auth`].
pub fn router(ctx: UiContext) -> Router {
    Router::new()
        .merge(assets::router())
        .merge(pages::router())
        .with_state(ctx)
}
