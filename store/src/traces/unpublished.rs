//! What a trace store holds that no published block holds yet (its live and frozen
//! heads), read apart from the blocks: an ingester answers queriers with it
//! (`POST /internal/v1/spans`), and a querier adds those answers to its own reads of the
//! blocks, whose list it refreshes after asking ([`TraceStore::ensure_listed_after`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::block::Operation;
use super::query::TraceQuery;
use super::span::{self, Span};
use super::TraceStore;
use crate::storage::BlockError;

/// What the dependency graph needs of one span: it is a call from its parent's service
/// to its own when the parent is of another service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallEdge {
    /// The span's trace.
    pub trace_id: String,
    /// The span.
    pub span_id: String,
    /// Its parent (empty for a root span).
    pub parent_span_id: String,
    /// Its service.
    pub service: String,
}

impl CallEdge {
    fn of(s: &Span) -> CallEdge {
        CallEdge {
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            parent_span_id: s.parent_span_id.clone(),
            service: s.service.clone(),
        }
    }
}

/// Encodes spans for another process: the WAL record form (JSON, each resource once), so
/// the resources the spans of one request share travel once, not once per span.
pub fn encode_spans(spans: &[Span]) -> Vec<u8> {
    span::encode_record(spans)
}

/// Decodes what [`encode_spans`] wrote; the error says what is wrong.
pub fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, String> {
    span::decode_record(bytes)
}

impl TraceStore {
    /// Every unpublished span of the traces `trace_ids` (live and frozen heads).
    pub fn unpublished_traces(&self, trace_ids: &[String]) -> Vec<Span> {
        let mut out = Vec::new();
        for id in trace_ids {
            self.head.read().trace(id, &mut out);
            for f in self.frozen.read().iter() {
                f.head.trace(id, &mut out);
            }
        }
        out
    }

    /// The traces with an unpublished span matching `q`, each with the start of its
    /// newest matching span (the key a search orders traces by).
    pub fn unpublished_matches(&self, q: &TraceQuery) -> HashMap<String, i64> {
        let mut found = HashMap::new();
        self.head.read().find(q, &mut found);
        for f in self.frozen.read().iter() {
            f.head.find(q, &mut found);
        }
        found
    }

    /// Services with their operations, over the unpublished spans only.
    pub fn unpublished_services(&self) -> BTreeMap<String, Vec<Operation>> {
        let mut map: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
        self.head.read().services(&mut map);
        for f in self.frozen.read().iter() {
            f.head.services(&mut map);
        }
        let mut out = BTreeMap::new();
        for (service, ops) in map {
            let mut list = Vec::new();
            for (name, kind) in ops {
                list.push(Operation { name, kind });
            }
            out.insert(service, list);
        }
        out
    }

    /// The call edges of the unpublished spans started in `[start, end]` (nanoseconds).
    pub fn unpublished_edges(&self, start: i64, end: i64) -> Vec<CallEdge> {
        let mut out = Vec::new();
        let mut visit = |s: &Span| {
            if s.start_unix_nano >= start && s.start_unix_nano <= end {
                out.push(CallEdge::of(s));
            }
        };
        for s in self.head.read().spans() {
            visit(s);
        }
        for f in self.frozen.read().iter() {
            for s in f.head.spans() {
                visit(s);
            }
        }
        out
    }

    /// With a metastore: makes sure the block list was read from it after `since`
    /// (reading it now unless a read that started after `since` already did), so a
    /// block published before `since` is in the list. Without one a no-op.
    pub fn ensure_listed_after(&self, since: Instant) -> Result<(), BlockError> {
        match &self.bucket {
            Some(b) => b.refresh_if_listed_before(since, &self.blocks),
            None => Ok(()),
        }
    }
}

/// Calls between services from the call edges of spans (each span once, by trace and
/// span id, whichever source it came from): for every span whose parent is a span of
/// another service, one call `parent service → child service`. Sorted by parent, then
/// child.
pub fn dependencies_of(edges: impl IntoIterator<Item = CallEdge>) -> Vec<super::Dependency> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut service_of: HashMap<(String, String), String> = HashMap::new();
    let mut children: Vec<(String, String, String)> = Vec::new();
    for e in edges {
        if !seen.insert((e.trace_id.clone(), e.span_id.clone())) {
            continue;
        }
        if !e.parent_span_id.is_empty() {
            children.push((e.trace_id.clone(), e.parent_span_id, e.service.clone()));
        }
        service_of.insert((e.trace_id, e.span_id), e.service);
    }
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (trace, parent, child_service) in children {
        if let Some(parent_service) = service_of.get(&(trace, parent)) {
            if *parent_service != child_service {
                *counts.entry((parent_service.clone(), child_service)).or_default() += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(counts.len());
    for ((parent, child), call_count) in counts {
        out.push(super::Dependency {
            parent,
            child,
            call_count,
        });
    }
    out
}
