//! The querier's trace reads: every live ingester's unpublished spans (asked over
//! `POST /internal/v1/spans`) merged with the published span blocks, each span once by
//! (trace id, span id).
//!
//! As for metrics, the ingesters are asked first and the block list is refreshed after
//! (unless it was read after the asking began): an ingester publishes a block (uploaded,
//! metastore row written) before its frozen head lets go of those spans, so every
//! acknowledged span is in an answer or in a block the refreshed list holds. A search
//! does this twice: once to find the newest matching traces, once to fetch all their
//! spans (a trace's spans may sit in several ingesters and blocks).
//!
//! Without a cluster (role `all`) every read is the trace store's own.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use didban_store::traces::{
    decode_spans, dependencies_of, newest_traces, CallEdge, Dependency, Operation, Span, TraceQuery,
    TraceStore,
};
use didban_store::BlockError;
use serde::de::DeserializeOwned;

use super::reader::{ClusterReader, IngesterError};
use super::spans::{Matches, Services, SpansRequest, SPANS_PATH};

/// Why a trace read failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceReadError {
    /// A live ingester did not answer: the answer would miss its spans.
    #[error("{0}")]
    Ingester(#[from] IngesterError),
    /// The blocks could not be read.
    #[error("{0}")]
    Store(#[from] BlockError),
}

/// Trace reads over the cluster (or the local store alone); cheap to build per request.
#[derive(Clone)]
pub struct ClusterTraces {
    store: Arc<TraceStore>,
    cluster: Option<Arc<ClusterReader>>,
}

impl ClusterTraces {
    /// Reads `store` and, with `cluster`, every live ingester's unpublished spans.
    pub fn new(store: Arc<TraceStore>, cluster: Option<Arc<ClusterReader>>) -> ClusterTraces {
        ClusterTraces { store, cluster }
    }

    /// Every ingester's JSON answer to `req`; empty without a cluster.
    fn ask<T: DeserializeOwned>(&self, req: &SpansRequest) -> Result<Vec<T>, TraceReadError> {
        let Some(cluster) = &self.cluster else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (member, bytes) in cluster.ask(SPANS_PATH, request_body(req))? {
            out.push(serde_json::from_slice(&bytes).map_err(|e| IngesterError {
                message: format!(
                    "ingester {} at {}: undecodable answer: {e}",
                    member.id, member.address
                ),
                rejected: false,
            })?);
        }
        Ok(out)
    }

    /// Every ingester's unpublished spans of `trace_ids`, then the block list refreshed.
    fn ingester_spans(&self, trace_ids: &[String]) -> Result<Vec<Span>, TraceReadError> {
        let Some(cluster) = &self.cluster else {
            return Ok(Vec::new());
        };
        let asked = Instant::now();
        let req = SpansRequest::Traces {
            trace_ids: trace_ids.to_vec(),
        };
        let mut out = Vec::new();
        for (member, bytes) in cluster.ask(SPANS_PATH, request_body(&req))? {
            out.extend(decode_spans(&bytes).map_err(|e| IngesterError {
                message: format!(
                    "ingester {} at {}: undecodable spans: {e}",
                    member.id, member.address
                ),
                rejected: false,
            })?);
        }
        self.store.ensure_listed_after(asked)?;
        Ok(out)
    }

    /// Every span of a trace, sorted by start, each once. Blocking.
    pub fn trace(&self, trace_id: &str) -> Result<Vec<Span>, TraceReadError> {
        let mut spans = self.ingester_spans(&[trace_id.to_string()])?;
        spans.extend(self.store.trace(trace_id)?);
        Ok(merge_trace(spans))
    }

    /// Traces with a span matching `q`, newest first (by their newest matching span), at
    /// most `q.limit`, each with all its spans from everywhere. Blocking.
    pub fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Vec<Span>>, TraceReadError> {
        if self.cluster.is_none() {
            return Ok(self.store.find_traces(q)?);
        }
        let asked = Instant::now();
        let answers: Vec<Matches> = self.ask(&SpansRequest::Matches { query: q.clone() })?;
        self.store.ensure_listed_after(asked)?;
        let mut found = self.store.unpublished_matches(q);
        for answer in answers {
            for (id, t) in answer {
                let slot = found.entry(id).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
        self.store.block_matches(q, &mut found)?;
        let ids = newest_traces(found, q.limit);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_trace: HashMap<String, Vec<Span>> = HashMap::new();
        for s in self.ingester_spans(&ids)? {
            by_trace.entry(s.trace_id.clone()).or_default().push(s);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut spans = by_trace.remove(&id).unwrap_or_default();
            spans.extend(self.store.trace(&id)?);
            let spans = merge_trace(spans);
            if !spans.is_empty() {
                out.push(spans);
            }
        }
        Ok(out)
    }

    /// Services with their operations, over every ingester and the blocks. Blocking.
    pub fn services(&self) -> Result<BTreeMap<String, Vec<Operation>>, TraceReadError> {
        let asked = Instant::now();
        let answers: Vec<Services> = self.ask(&SpansRequest::Services)?;
        if self.cluster.is_some() {
            self.store.ensure_listed_after(asked)?;
        }
        let mut map: BTreeMap<String, BTreeSet<Operation>> = BTreeMap::new();
        for services in answers.into_iter().chain([self.store.services()]) {
            for (service, ops) in services {
                map.entry(service).or_default().extend(ops);
            }
        }
        let mut out = BTreeMap::new();
        for (service, ops) in map {
            out.insert(service, ops.into_iter().collect());
        }
        Ok(out)
    }

    /// Calls between services over the spans started in `[start, end]` (nanoseconds)
    /// everywhere (see [`TraceStore::dependencies`]). Blocking.
    pub fn dependencies(&self, start: i64, end: i64) -> Result<Vec<Dependency>, TraceReadError> {
        if self.cluster.is_none() {
            return Ok(self.store.dependencies(start, end)?);
        }
        let asked = Instant::now();
        let answers: Vec<Vec<CallEdge>> = self.ask(&SpansRequest::Edges {
            start_unix_nano: start,
            end_unix_nano: end,
        })?;
        self.store.ensure_listed_after(asked)?;
        let mut edges = self.store.unpublished_edges(start, end);
        for answer in answers {
            edges.extend(answer);
        }
        edges.extend(self.store.block_edges(start, end)?);
        Ok(dependencies_of(edges))
    }
}

fn request_body(req: &SpansRequest) -> Vec<u8> {
    // A plain enum of strings and numbers always serialises.
    serde_json::to_vec(req).unwrap_or_default()
}

/// The spans of one trace from several sources, each (trace id, span id) once, sorted by
/// start then span id (the order the trace store returns).
pub fn merge_trace(mut spans: Vec<Span>) -> Vec<Span> {
    let mut seen = HashSet::new();
    spans.retain(|s| seen.insert((s.trace_id.clone(), s.span_id.clone())));
    spans.sort_by(|a, b| (a.start_unix_nano, &a.span_id).cmp(&(b.start_unix_nano, &b.span_id)));
    spans
}

impl From<TraceReadError> for didban_ui::signal_reads::ReadFailure {
    fn from(e: TraceReadError) -> Self {
        match e {
            TraceReadError::Ingester(i) => i.into(),
            TraceReadError::Store(b) => didban_ui::signal_reads::ReadFailure::internal(b.to_string()),
        }
    }
}

/// The UI's trace pages read the cluster like the Jaeger API.
impl didban_ui::signal_reads::TraceReads for ClusterTraces {
    fn trace(&self, trace_id: &str) -> Result<Vec<Span>, didban_ui::signal_reads::ReadFailure> {
        Ok(ClusterTraces::trace(self, trace_id)?)
    }

    fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Vec<Span>>, didban_ui::signal_reads::ReadFailure> {
        Ok(ClusterTraces::find_traces(self, q)?)
    }

    fn services(&self) -> Result<BTreeMap<String, Vec<Operation>>, didban_ui::signal_reads::ReadFailure> {
        Ok(ClusterTraces::services(self)?)
    }

    fn dependencies(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<Dependency>, didban_ui::signal_reads::ReadFailure> {
        Ok(ClusterTraces::dependencies(self, start, end)?)
    }
}
