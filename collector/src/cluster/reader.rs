//! The querier's side of the cluster: the live ingesters (listed from the metastore), the
//! fan-out to them, and the metric read path's parts — every live ingester's heads (asked
//! over `POST /internal/v1/heads`) merged with the published blocks (the local `Db`, whose
//! block list comes from the metastore) per series, duplicate timestamps dropped, so a
//! series two replicas both received is counted once. The `Queryable` they make up, and
//! its view for one PromQL evaluation, are in `metric_read`.
//!
//! Order matters: the ingesters are asked first, then the block list is refreshed unless
//! it was read after the asking began ([`ClusterReader::ask_then_list`]). An ingester
//! writes a block's metastore row before its head lets go of those samples, so every
//! sample is either in an answer or in a block the refreshed list holds.
//!
//! The engine's reads are synchronous (they run on blocking threads), so the requests run
//! on a small runtime of this reader's own and the read waits for them.
//!
//! [`ClusterReader::ask`], the fan-out itself (every live ingester at once, each within
//! `fanout_timeout`, failing naming the first that does not answer), is what the trace
//! and log reads (`trace_read`, `log_read`) use too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use didban_coord::{ConnectOptions, MemberRow, ReconnectingClient};
use didban_store::metrics::exchange::decode_series;
use didban_store::window::SeriesWindows;
use didban_store::{
    merge_series, Db, LabelMatcher, Queryable, ReadError, ReadStats, SeriesSamples, WindowsRead,
};
use parking_lot::RwLock;

use super::wire::{HeadsRequest, HEADS_PATH};
use crate::config::cluster::ClusterConfig;

/// The role ingesters announce themselves under.
pub const INGESTER_ROLE: &str = "ingester";

/// Blocks plus the live ingesters' heads.
pub struct ClusterReader {
    db: Arc<Db>,
    ingesters: Arc<RwLock<Vec<MemberRow>>>,
    /// This process's own member id when it announces a head too (an alerting instance):
    /// its head is read through `db`, not asked over HTTP.
    own_id: Option<String>,
    http: reqwest::Client,
    secret: String,
    /// Runs the requests and the member list's refresher; shut down in the background
    /// on drop (it may be dropped on an async thread).
    runtime: Option<tokio::runtime::Runtime>,
}

impl ClusterReader {
    /// Starts following the live ingesters of `cluster_name` in the database at `url`,
    /// and returns once their list was read once. `own_id`: this process's member id when
    /// it announces its own head (left out of the fan-out).
    pub async fn start(
        db: Arc<Db>,
        url: String,
        options: ConnectOptions,
        cluster_name: String,
        cluster: &ClusterConfig,
        own_id: Option<String>,
    ) -> anyhow::Result<ClusterReader> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("didban-fanout")
            .enable_all()
            .build()
            .context("starting the querier's fan-out runtime")?;
        let http = reqwest::Client::builder()
            .timeout(cluster.fanout_timeout)
            .build()
            .context("building the querier's HTTP client")?;
        let secret = cluster
            .secret
            .clone()
            .context("the querier needs the cluster secret")?;
        let ingesters = Arc::new(RwLock::new(Vec::new()));
        let every = (cluster.member_ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(2));
        let (listed_tx, mut listed) = tokio::sync::watch::channel(None::<Result<(), String>>);
        let list = ingesters.clone();
        runtime.spawn(async move {
            let db = ReconnectingClient::new(url, options);
            loop {
                let result = async {
                    let client = db.get().await?;
                    didban_coord::live_members(&*client, &cluster_name, INGESTER_ROLE).await
                }
                .await;
                match result {
                    Ok(rows) => {
                        *list.write() = rows;
                        let _ = listed_tx.send(Some(Ok(())));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list the ingesters; keeping the last list");
                        listed_tx.send_if_modified(|first| {
                            if first.is_none() {
                                *first = Some(Err(e.to_string()));
                                return true;
                            }
                            false
                        });
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        let reader = ClusterReader {
            db,
            ingesters,
            own_id,
            http,
            secret,
            runtime: Some(runtime),
        };
        let first = listed
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("the ingester list task stopped"))?
            .clone();
        if let Some(Err(e)) = first {
            anyhow::bail!("listing the ingesters: {e}");
        }
        Ok(reader)
    }

    /// The live ingesters as last listed.
    pub fn ingesters(&self) -> Vec<MemberRow> {
        self.ingesters.read().clone()
    }

    /// Every live ingester's heads for the matchers and range; fails naming the first
    /// ingester that did not answer (a partial answer would silently miss data).
    pub(super) fn heads(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        let body = serde_json::to_vec(&HeadsRequest::new(matchers, start_ms, end_ms)).map_err(unreadable)?;
        let answers = self.ask(HEADS_PATH, body).map_err(unavailable)?;
        let mut out = Vec::new();
        for (member, bytes) in answers {
            let series =
                decode_series(&bytes).map_err(|e| unavailable(IngesterError::of(&member, e.to_string())))?;
            out.extend(series);
        }
        Ok(out)
    }

    /// Posts the JSON `body` to `path` of every live ingester at once (this process left
    /// out) and waits for all answers, each at most `fanout_timeout`; fails with the
    /// first ingester that did not answer with success (a partial answer would silently
    /// miss data). Blocking: call from a blocking thread.
    pub fn ask(&self, path: &str, body: Vec<u8>) -> Result<Vec<(MemberRow, Bytes)>, IngesterError> {
        let mut out = Vec::new();
        for answer in self.ask_each(path, |_| body.clone()) {
            out.push(answer?);
        }
        Ok(out)
    }

    /// Posts to `path` of every live ingester at once (this process left out) the JSON
    /// body `body_for` makes for it, and returns every answer or failure, each after at
    /// most `fanout_timeout`: for callers that keep a state per ingester (the live tail).
    /// Blocking: call from a blocking thread.
    pub fn ask_each(
        &self,
        path: &str,
        body_for: impl Fn(&MemberRow) -> Vec<u8>,
    ) -> Vec<Result<(MemberRow, Bytes), IngesterError>> {
        self.fan_out(path, body_for, None)
    }

    /// [`ClusterReader::ask_each`] with the same `body` for every ingester and each answer
    /// awaited at most `within` (shorter than `fanout_timeout`): for cheap asks a page
    /// must not wait long for (the home page's figures). Blocking.
    pub fn ask_each_within(
        &self,
        path: &str,
        body: Vec<u8>,
        within: Duration,
    ) -> Vec<Result<(MemberRow, Bytes), IngesterError>> {
        self.fan_out(path, |_| body.clone(), Some(within))
    }

    fn fan_out(
        &self,
        path: &str,
        body_for: impl Fn(&MemberRow) -> Vec<u8>,
        within: Option<Duration>,
    ) -> Vec<Result<(MemberRow, Bytes), IngesterError>> {
        let mut members = self.ingesters();
        members.retain(|m| Some(&m.id) != self.own_id.as_ref());
        if members.is_empty() {
            return Vec::new();
        }
        let mut asks = Vec::with_capacity(members.len());
        for m in members {
            let mut request = self
                .http
                .post(format!("{}{path}", m.address.trim_end_matches('/')))
                .bearer_auth(&self.secret)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body_for(&m));
            if let Some(within) = within {
                request = request.timeout(within);
            }
            asks.push(async move {
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) => return Err(IngesterError::of(&m, e.to_string())),
                };
                let status = response.status();
                let bytes = match response.bytes().await {
                    Ok(b) => b,
                    Err(e) => return Err(IngesterError::of(&m, e.to_string())),
                };
                if !status.is_success() {
                    let mut e = IngesterError::of(
                        &m,
                        format!("{status}: {}", String::from_utf8_lossy(&bytes).trim()),
                    );
                    e.rejected = status == reqwest::StatusCode::BAD_REQUEST;
                    return Err(e);
                }
                Ok((m, bytes))
            });
        }
        let stopped = || IngesterError {
            message: "the fan-out runtime stopped".to_string(),
            rejected: false,
        };
        let Some(runtime) = self.runtime.as_ref() else {
            return vec![Err(stopped())];
        };
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(futures::future::join_all(asks).await);
        });
        rx.recv().unwrap_or_else(|_| vec![Err(stopped())])
    }

    /// What `ask` got from the ingesters, then the block list refreshed unless it was
    /// read after the asking began (the order the module comment explains): every read of
    /// the blocks after this returns finds what the answers miss.
    pub(super) fn ask_then_list<T>(
        &self,
        ask: impl FnOnce() -> Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        let asked = Instant::now();
        let answers = ask()?;
        self.db.ensure_listed_after(asked)?;
        Ok(answers)
    }

    /// `heads` (the ingesters' answers for the matchers and range) merged with the blocks.
    pub(super) fn with_blocks(
        &self,
        heads: Vec<SeriesSamples>,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<SeriesSamples>, ReadStats), ReadError> {
        let (mut parts, stats) = self.db.select_counted(matchers, start_ms, end_ms)?;
        parts.extend(heads);
        Ok((merge_series(parts), stats))
    }

    /// `heads` (the ingesters' answers for the matchers and range) joined to the raw part
    /// of a downsampled read of the blocks. Downsampled blocks hold only data older than
    /// the downsampling ages (days), heads only recent raw samples.
    pub(super) fn with_block_windows(
        &self,
        heads: Vec<SeriesSamples>,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        let mut read = self
            .db
            .select_windows(matchers, start_ms, end_ms, max_resolution_ms)?;
        read.series = add_raw(read.series, heads);
        Ok(read)
    }
}

/// A failed read of the cluster as the store's read error.
pub(super) fn unreadable(e: impl std::fmt::Display) -> ReadError {
    ReadError::Io(std::io::Error::other(e.to_string()))
}

/// An ingester's failure as the store's read error: unavailable (503, worth retrying)
/// when it did not answer or answered garbled, a failed read when it refused the request.
pub(super) fn unavailable(e: IngesterError) -> ReadError {
    if e.rejected {
        return unreadable(e);
    }
    ReadError::Unavailable(e.to_string())
}

/// An ingester that did not answer a querier's request (or answered with an error),
/// named with its address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IngesterError {
    /// `ingester <id> at <address>: <what went wrong>`.
    pub message: String,
    /// The ingester refused the request as invalid (400): the request's fault (a query
    /// it cannot parse), not the cluster's.
    pub rejected: bool,
}

impl IngesterError {
    /// The error of ingester `m`: `e` prefixed with its id and address.
    pub(crate) fn of(m: &MemberRow, e: String) -> IngesterError {
        IngesterError {
            message: format!("ingester {} at {}: {e}", m.id, m.address),
            rejected: false,
        }
    }
}

/// As the UI's pages show it: the request's fault (400) when the ingester refused it as
/// invalid, else part of the cluster unavailable (503).
impl From<IngesterError> for didban_ui::signal_reads::ReadFailure {
    fn from(e: IngesterError) -> Self {
        didban_ui::signal_reads::ReadFailure {
            bad_request: e.rejected,
            message: e.message,
            unavailable: !e.rejected,
        }
    }
}

/// What an alerting instance's rules read and write: the cluster (blocks and every
/// ingester's head, its own head through its database) and its own database, which holds
/// the rules' output until it is published as blocks.
pub struct ClusterRuleStorage {
    /// The cluster's read path.
    pub reader: Arc<ClusterReader>,
    /// This process's database.
    pub db: Arc<Db>,
}

impl didban_alerting::eval::RuleStorage for ClusterRuleStorage {
    fn queryable(&self) -> &dyn Queryable {
        self.reader.as_ref()
    }

    fn append(&self, batch: Vec<SeriesSamples>) -> futures::future::BoxFuture<'_, Result<(), String>> {
        didban_alerting::eval::RuleStorage::append(self.db.as_ref(), batch)
    }
}

impl Drop for ClusterReader {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `windows` with the raw samples of `heads` merged into the series they belong to (new
/// series added), sorted by labels, duplicate timestamps dropped.
fn add_raw(windows: Vec<SeriesWindows>, heads: Vec<SeriesSamples>) -> Vec<SeriesWindows> {
    let mut by_labels: BTreeMap<didban_store::Labels, SeriesWindows> = BTreeMap::new();
    for w in windows {
        by_labels.insert(w.labels.clone(), w);
    }
    for h in heads {
        match by_labels.get_mut(&h.labels) {
            Some(w) => {
                let merged = merge_series(vec![
                    SeriesSamples {
                        labels: h.labels.clone(),
                        samples: std::mem::take(&mut w.samples),
                        histograms: std::mem::take(&mut w.histograms),
                    },
                    h,
                ]);
                if let Some(m) = merged.into_iter().next() {
                    w.samples = m.samples;
                    w.histograms = m.histograms;
                }
            }
            None => {
                by_labels.insert(h.labels.clone(), didban_store::query::raw_windows(h));
            }
        }
    }
    by_labels.into_values().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_store::{Labels, Sample};

    #[test]
    fn head_samples_join_the_raw_part_of_their_series() {
        let a = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "x"), ("job", "b")]);
        let windows = vec![SeriesWindows {
            labels: a.clone(),
            windows: Vec::new(),
            samples: vec![Sample::new(10, 1.0), Sample::new(20, 2.0)],
            histograms: Vec::new(),
        }];
        let heads = vec![
            SeriesSamples {
                labels: a.clone(),
                samples: vec![Sample::new(20, 2.0), Sample::new(30, 3.0)],
                histograms: Vec::new(),
            },
            SeriesSamples {
                labels: b.clone(),
                samples: vec![Sample::new(5, 9.0)],
                histograms: Vec::new(),
            },
        ];
        let out = add_raw(windows, heads);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, a);
        let ts: Vec<i64> = out[0].samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![10, 20, 30], "merged, the duplicate at 20 once");
        assert_eq!(out[1].labels, b);
        assert_eq!(out[1].samples.len(), 1);
    }
}
