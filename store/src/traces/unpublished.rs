//! What a trace store holds that no published block holds yet (its live and frozen
//! heads), read apart from the blocks: an ingester answers queriers with it
//! (`POST /internal/v1/spans`), and a querier adds those answers to its own reads of the
//! blocks, whose list it refreshes after asking ([`TraceStore::ensure_listed_after`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use super::block::{operations_by_service, Operation};
use super::dependencies::CallEdge;
use super::query::TraceQuery;
use super::span::Span;
use super::TraceStore;
use crate::storage::BlockError;

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
        operations_by_service(self.unpublished_operation_sets())
    }

    /// The operations of the live and frozen heads, per service, as sets to add to.
    pub(crate) fn unpublished_operation_sets(&self) -> BTreeMap<String, BTreeSet<(String, i32)>> {
        let mut map: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
        self.head.read().services(&mut map);
        for f in self.frozen.read().iter() {
            f.head.services(&mut map);
        }
        map
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
