//! Calls between services, as Jaeger's `/api/dependencies` lists them, from what each span
//! says of its parent: read from blocks and heads alike, and from the edges ingesters send
//! a querier (`CallEdge`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::span::Span;

/// Calls from one service to another, as Jaeger's `/api/dependencies` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Service of the calling (parent) span.
    pub parent: String,
    /// Service of the called (child) span.
    pub child: String,
    /// Child spans counted.
    pub call_count: u64,
}

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
    pub(crate) fn of(s: &Span) -> CallEdge {
        CallEdge {
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            parent_span_id: s.parent_span_id.clone(),
            service: s.service.clone(),
        }
    }
}

/// Calls between services from the call edges of spans (each span once, by trace and
/// span id, whichever source it came from): for every span whose parent is a span of
/// another service, one call `parent service → child service`. Sorted by parent, then
/// child.
pub fn dependencies_of(edges: impl IntoIterator<Item = CallEdge>) -> Vec<Dependency> {
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
        out.push(Dependency {
            parent,
            child,
            call_count,
        });
    }
    out
}
