//! The live tail (`/api/logs/tail`) over the cluster: this process's store and every live
//! ingester, each followed with its own cursor.
//!
//! A tail follows ingest order, which is a per-process sequence (each store numbers the
//! records it indexes), so no cursor is shared: the querier keeps one per ingester (by
//! member id) and asks each, at every step, for what it committed after its cursor
//! (`LogsRequest::Tail`). An ingester seen for the first time is asked where a tail
//! starting now starts, and followed from there. One that does not answer keeps its
//! cursor and is asked again at the next step, so a tail misses nothing of an ingester
//! that comes back; one that left the list is dropped. A step's records are ordered by
//! timestamp (each ingester's in ingest order otherwise).

use std::collections::HashMap;
use std::sync::Arc;

use didban_store::logs::{LogError, LogRecord, LogStore};

use super::logs::{LogsRequest, TailAnswer, LOGS_PATH};
use super::reader::ClusterReader;

/// Where a live tail stands: this process's cursor and one per ingester.
#[derive(Debug, Clone, Default)]
pub struct TailCursors {
    local: u64,
    ingesters: HashMap<String, u64>,
}

/// A live tail over `store` and, with `cluster`, every live ingester.
#[derive(Clone)]
pub struct ClusterTail {
    store: Arc<LogStore>,
    cluster: Option<Arc<ClusterReader>>,
}

impl ClusterTail {
    /// Follows `store` and, with `cluster`, the ingesters.
    pub fn new(store: Arc<LogStore>, cluster: Option<Arc<ClusterReader>>) -> ClusterTail {
        ClusterTail { store, cluster }
    }

    /// Where a tail starting now starts, on every source. Blocking.
    pub fn start(&self, query: &str) -> TailCursors {
        let mut cursors = TailCursors {
            local: self.store.tail_start(),
            ingesters: HashMap::new(),
        };
        self.follow_ingesters(query, &mut cursors, 0);
        cursors
    }

    /// The records committed since `cursors` (at most `limit` per source), oldest first,
    /// moving the cursors past them. A failing local store ends the tail (`Err`); an
    /// ingester that does not answer is asked again next time. Blocking.
    pub fn step(
        &self,
        query: &str,
        cursors: &mut TailCursors,
        limit: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        let (mut records, last) = self.store.tail(query, cursors.local, limit)?;
        cursors.local = last;
        records.extend(self.follow_ingesters(query, cursors, limit));
        records.sort_by_key(|r| r.timestamp_unix_nano);
        Ok(records)
    }

    /// Asks every live ingester for its records after its cursor (or, for one seen the
    /// first time, for its start), keeping the cursors of the ingesters listed.
    fn follow_ingesters(&self, query: &str, cursors: &mut TailCursors, limit: usize) -> Vec<LogRecord> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        let known = cursors.ingesters.clone();
        let answers = cluster.ask_each(LOGS_PATH, |member| {
            let request = LogsRequest::Tail {
                query: query.to_string(),
                after: known.get(&member.id).copied(),
                limit: limit.max(1),
            };
            serde_json::to_vec(&request).unwrap_or_default()
        });
        let live: Vec<String> = cluster.ingesters().into_iter().map(|m| m.id).collect();
        cursors.ingesters.retain(|id, _| live.contains(id));
        let mut out = Vec::new();
        for answer in answers {
            let (member, bytes) = match answer {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "an ingester did not answer a live tail step; asked again next step");
                    continue;
                }
            };
            match serde_json::from_slice::<TailAnswer>(&bytes) {
                Ok(a) => {
                    if known.contains_key(&member.id) {
                        out.extend(a.records);
                    }
                    cursors.ingesters.insert(member.id, a.last);
                }
                Err(e) => tracing::warn!(ingester = %member.id, error = %e, "undecodable live tail answer"),
            }
        }
        out
    }
}
