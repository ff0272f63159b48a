//! Exemplars over the cluster. An exemplar lives only in the exemplar store of the
//! ingester that consumed its sample (exemplars are never published to the bucket), so
//! the ingester answers `POST /internal/v1/exemplars` with what its store holds for the
//! matcher sets and range asked, and a querier merges every live ingester's answer with
//! its own store's: per series, each exemplar once (two replicas, or a replacement
//! ingester replaying the same input, hold the same one), oldest first, series sorted by
//! labels.
//!
//! As for metric, span and log reads, a live ingester that does not answer fails the read
//! naming it: an answer without its exemplars would look complete and be wrong.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use didban_auth::{Need, Require};
use didban_store::{Exemplar, ExemplarStore, LabelMatcher, Labels, SeriesExemplars};
use serde::{Deserialize, Serialize};

use super::reader::{ClusterReader, IngesterError};
use super::wire::{compile, to_wire, WireMatcher};

/// The path of the internal exemplars API.
pub const EXEMPLARS_PATH: &str = "/internal/v1/exemplars";

/// What a querier asks an ingester: the exemplars of every series matching at least one
/// matcher set, in `[start_ms, end_ms]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExemplarsRequest {
    /// Matcher sets, one per vector selector of the query.
    pub sets: Vec<Vec<WireMatcher>>,
    /// From this time (ms, inclusive).
    pub start_ms: i64,
    /// Up to this time (ms, inclusive).
    pub end_ms: i64,
}

/// One exemplar on the wire. The value travels as Rust's shortest round-tripping text
/// (`NaN` and `inf` included, which JSON numbers cannot carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireExemplar {
    labels: Labels,
    value: String,
    timestamp_ms: i64,
}

/// One series' exemplars on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireSeries {
    series: Labels,
    exemplars: Vec<WireExemplar>,
}

/// What the handler needs.
#[derive(Clone)]
struct Exemplars {
    store: Arc<ExemplarStore>,
    secret: Arc<str>,
}

/// The internal exemplars API of an ingester (open to the user guard; the handler checks
/// the cluster secret itself).
pub fn router(store: Arc<ExemplarStore>, secret: &str) -> Router {
    Router::new()
        .route(EXEMPLARS_PATH, post(answer))
        .route_layer(Require::api(Need::Open))
        .with_state(Exemplars {
            store,
            secret: Arc::from(secret),
        })
}

async fn answer(State(h): State<Exemplars>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = super::wire::refuse_without_secret(&headers, &h.secret) {
        return refused;
    }
    let bad = |e: String| {
        (
            StatusCode::BAD_REQUEST,
            format!("invalid exemplars request: {e}\n"),
        )
            .into_response()
    };
    let req: ExemplarsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(e.to_string()),
    };
    let mut sets = Vec::with_capacity(req.sets.len());
    for set in &req.sets {
        match compile(set) {
            Ok(s) if !s.is_empty() => sets.push(s),
            Ok(_) => return bad("an empty matcher set".to_string()),
            Err(e) => return bad(e),
        }
    }
    let store = h.store.clone();
    let found = tokio::task::spawn_blocking(move || store.select(&sets, req.start_ms, req.end_ms)).await;
    match found {
        Ok(found) => Json(to_wire_series(found)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("exemplar read failed: {e}\n"),
        )
            .into_response(),
    }
}

fn to_wire_series(found: Vec<SeriesExemplars>) -> Vec<WireSeries> {
    let mut out = Vec::with_capacity(found.len());
    for s in found {
        let mut exemplars = Vec::with_capacity(s.exemplars.len());
        for e in s.exemplars {
            exemplars.push(WireExemplar {
                labels: e.labels,
                value: e.value.to_string(),
                timestamp_ms: e.timestamp_ms,
            });
        }
        out.push(WireSeries {
            series: s.series,
            exemplars,
        });
    }
    out
}

fn from_wire_series(wire: Vec<WireSeries>) -> Result<Vec<SeriesExemplars>, String> {
    let mut out = Vec::with_capacity(wire.len());
    for s in wire {
        let mut exemplars = Vec::with_capacity(s.exemplars.len());
        for e in s.exemplars {
            let value: f64 = e
                .value
                .parse()
                .map_err(|_| format!("exemplar value {:?} is not a number", e.value))?;
            exemplars.push(Exemplar {
                labels: e.labels,
                value,
                timestamp_ms: e.timestamp_ms,
            });
        }
        out.push(SeriesExemplars {
            series: s.series,
            exemplars,
        });
    }
    Ok(out)
}

/// The exemplars of the series matching any of `sets` in `[start_ms, end_ms]`: `store`'s
/// and, with `cluster`, every live ingester's, merged ([`merge_exemplars`]). Fails naming
/// the first ingester that did not answer. Blocking: call from a blocking thread.
pub fn select_everywhere(
    store: &ExemplarStore,
    cluster: Option<&ClusterReader>,
    sets: &[Vec<LabelMatcher>],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<SeriesExemplars>, IngesterError> {
    let local = store.select(sets, start_ms, end_ms);
    let Some(cluster) = cluster else {
        return Ok(local);
    };
    let req = ExemplarsRequest {
        sets: sets.iter().map(|s| to_wire(s)).collect(),
        start_ms,
        end_ms,
    };
    // Strings and numbers only: always serialises.
    let body = serde_json::to_vec(&req).unwrap_or_default();
    let mut parts = local;
    for (member, bytes) in cluster.ask(EXEMPLARS_PATH, body)? {
        let answer = serde_json::from_slice::<Vec<WireSeries>>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(from_wire_series)
            .map_err(|e| IngesterError::of(&member, format!("undecodable exemplars: {e}")))?;
        parts.extend(answer);
    }
    Ok(merge_exemplars(parts))
}

/// The charts' exemplar reads ([`didban_ui::signal_reads::ExemplarReads`]): the local store,
/// and on a querier every live ingester's too, as `/api/v1/query_exemplars` answers.
pub struct ClusterExemplars {
    store: Arc<ExemplarStore>,
    cluster: Option<Arc<ClusterReader>>,
}

impl ClusterExemplars {
    /// Reads over `store` and, with `cluster`, the live ingesters.
    pub fn new(store: Arc<ExemplarStore>, cluster: Option<Arc<ClusterReader>>) -> ClusterExemplars {
        ClusterExemplars { store, cluster }
    }
}

impl didban_ui::signal_reads::ExemplarReads for ClusterExemplars {
    fn select(
        &self,
        sets: &[Vec<LabelMatcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>, didban_ui::signal_reads::ReadFailure> {
        Ok(select_everywhere(
            &self.store,
            self.cluster.as_deref(),
            sets,
            start_ms,
            end_ms,
        )?)
    }
}

/// Series' exemplars from several sources as one answer: one entry per series, sorted by
/// labels; each series' exemplars oldest first, an exemplar several sources hold (same
/// time, value and labels) once.
pub fn merge_exemplars(parts: Vec<SeriesExemplars>) -> Vec<SeriesExemplars> {
    let mut by_series: BTreeMap<Labels, Vec<Exemplar>> = BTreeMap::new();
    for part in parts {
        by_series.entry(part.series).or_default().extend(part.exemplars);
    }
    let mut out = Vec::with_capacity(by_series.len());
    for (series, mut exemplars) in by_series {
        exemplars.sort_by(|a, b| {
            (a.timestamp_ms, &a.labels)
                .cmp(&(b.timestamp_ms, &b.labels))
                .then(a.value.total_cmp(&b.value))
        });
        exemplars.dedup_by(|a, b| {
            a.timestamp_ms == b.timestamp_ms && a.value.to_bits() == b.value.to_bits() && a.labels == b.labels
        });
        out.push(SeriesExemplars { series, exemplars });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ex(t: i64, v: f64, trace: &str) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", trace)]),
            value: v,
            timestamp_ms: t,
        }
    }

    #[test]
    fn merged_per_series_sorted_and_each_exemplar_once() {
        let a = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "x"), ("job", "b")]);
        let parts = vec![
            SeriesExemplars {
                series: b.clone(),
                exemplars: vec![ex(20, 1.0, "t2"), ex(30, 1.0, "t3")],
            },
            SeriesExemplars {
                series: a.clone(),
                exemplars: vec![ex(10, 1.0, "t1")],
            },
            // a replica's copy of b's exemplars, one of them new, one with another value
            SeriesExemplars {
                series: b.clone(),
                exemplars: vec![ex(5, 2.0, "t0"), ex(20, 1.0, "t2"), ex(20, 1.5, "t2")],
            },
        ];
        let out = merge_exemplars(parts);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].series, a);
        assert_eq!(out[1].series, b);
        let times: Vec<(i64, f64)> = out[1]
            .exemplars
            .iter()
            .map(|e| (e.timestamp_ms, e.value))
            .collect();
        assert_eq!(times, vec![(5, 2.0), (20, 1.0), (20, 1.5), (30, 1.0)]);
    }

    #[test]
    fn values_survive_the_wire_exactly() {
        let series = Labels::from_pairs([("__name__", "x")]);
        let values = [0.1 + 0.2, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e-300];
        let found = vec![SeriesExemplars {
            series: series.clone(),
            exemplars: values
                .iter()
                .enumerate()
                .map(|(i, v)| ex(i as i64, *v, "t"))
                .collect(),
        }];
        let text = serde_json::to_vec(&to_wire_series(found.clone())).unwrap();
        let back = from_wire_series(serde_json::from_slice(&text).unwrap()).unwrap();
        for (a, b) in back[0].exemplars.iter().zip(&found[0].exemplars) {
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        let nan = vec![WireSeries {
            series,
            exemplars: vec![WireExemplar {
                labels: Labels::default(),
                value: f64::NAN.to_string(),
                timestamp_ms: 1,
            }],
        }];
        assert!(from_wire_series(nan).unwrap()[0].exemplars[0].value.is_nan());
    }
}
