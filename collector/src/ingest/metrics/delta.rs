//! Delta → cumulative conversion for OTLP sums and histograms.
//!
//! Prometheus stores cumulative counters, so the collector keeps, per output series, the
//! running total of every delta it has seen. The rules (also in `docs/otlp-mapping.md`):
//!
//! - a point whose `time_unix_nano` is not after the last one seen for the series is refused
//!   as out of order (this also drops a client's retry of a point already counted);
//! - a point whose `start_time_unix_nano` is set and lies before the last point's time
//!   overlaps what was already counted, so the series restarts from this point's value
//!   (Prometheus sees a counter reset, which `rate()` handles);
//! - otherwise (contiguous or with a gap) the delta is added to the running total;
//! - a series not updated for [`IDLE_EXPIRY`] is forgotten and restarts from its next delta;
//! - at most `max_streams` series are tracked; past that new delta series are refused.
//!
//! The state lives in memory only: after a restart every delta series starts again from
//! zero, which Prometheus also reads as a counter reset.

use foldhash::HashMap;
use std::time::{Duration, Instant};

use didban_store::model::FloatHistogram;
use didban_store::Labels;
use parking_lot::Mutex;

use super::buckets::Buckets;

/// How long a delta series may go without a point before its running total is dropped.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(3600);

/// Why a delta point could not be added.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeltaError {
    /// The point is not newer than the last point of its series.
    #[error("delta point for {series} at {time_ns} ns is not after the last point at {last_ns} ns")]
    OutOfOrder {
        series: String,
        time_ns: u64,
        last_ns: u64,
    },
    /// Too many delta series are tracked.
    #[error("too many delta series are tracked (limit {limit}); refusing new series {series}")]
    TooManyStreams { limit: usize, series: String },
}

#[derive(Debug, Clone)]
enum Total {
    Number(f64),
    Histogram(Buckets),
    Native(FloatHistogram),
}

#[derive(Debug)]
struct Stream {
    last_ns: u64,
    touched: Instant,
    total: Total,
}

/// Running totals of delta series, keyed by the series' labels.
#[derive(Debug)]
pub struct DeltaTracker {
    streams: Mutex<HashMap<Labels, Stream>>,
    max_streams: usize,
}

impl DeltaTracker {
    /// A tracker holding at most `max_streams` series (0 = unlimited).
    pub fn new(max_streams: usize) -> Self {
        DeltaTracker {
            streams: Mutex::new(HashMap::default()),
            max_streams: if max_streams == 0 { usize::MAX } else { max_streams },
        }
    }

    /// An empty tracker with the same limit.
    #[cfg(test)]
    pub(crate) fn empty_like(&self) -> DeltaTracker {
        DeltaTracker {
            streams: Mutex::new(HashMap::default()),
            max_streams: self.max_streams,
        }
    }

    /// Number of series tracked.
    pub fn len(&self) -> usize {
        self.streams.lock().len()
    }

    /// True when no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a numeric delta and returns the running total.
    pub fn add_number(
        &self,
        key: &Labels,
        start_ns: u64,
        time_ns: u64,
        delta: f64,
    ) -> Result<f64, DeltaError> {
        let total = self.add(key, start_ns, time_ns, Total::Number(delta))?;
        match total {
            Total::Number(v) => Ok(v),
            Total::Histogram(_) | Total::Native(_) => Ok(delta),
        }
    }

    /// Adds a delta histogram and returns the running cumulative histogram.
    pub fn add_histogram(
        &self,
        key: &Labels,
        start_ns: u64,
        time_ns: u64,
        delta: &Buckets,
    ) -> Result<Buckets, DeltaError> {
        let total = self.add(key, start_ns, time_ns, Total::Histogram(delta.clone()))?;
        match total {
            Total::Histogram(h) => Ok(h),
            Total::Number(_) | Total::Native(_) => Ok(delta.clone()),
        }
    }

    /// Adds a delta native histogram and returns the running cumulative one (buckets added
    /// at the coarser schema and wider zero bucket of the two).
    pub fn add_native(
        &self,
        key: &Labels,
        start_ns: u64,
        time_ns: u64,
        delta: &FloatHistogram,
    ) -> Result<FloatHistogram, DeltaError> {
        let total = self.add(key, start_ns, time_ns, Total::Native(delta.clone()))?;
        match total {
            Total::Native(h) => Ok(h),
            Total::Number(_) | Total::Histogram(_) => Ok(delta.clone()),
        }
    }

    fn add(&self, key: &Labels, start_ns: u64, time_ns: u64, delta: Total) -> Result<Total, DeltaError> {
        let now = Instant::now();
        let mut streams = self.streams.lock();
        if let Some(stream) = streams.get_mut(key) {
            if time_ns <= stream.last_ns {
                return Err(DeltaError::OutOfOrder {
                    series: key.to_string(),
                    time_ns,
                    last_ns: stream.last_ns,
                });
            }
            let overlaps = start_ns != 0 && start_ns < stream.last_ns;
            let restarted = overlaps || now.duration_since(stream.touched) > IDLE_EXPIRY;
            stream.total = match (&stream.total, delta) {
                (Total::Number(sum), Total::Number(d)) if !restarted => Total::Number(sum + d),
                (Total::Histogram(sum), Total::Histogram(d)) if !restarted => {
                    let mut merged = sum.clone();
                    merged.add(&d);
                    Total::Histogram(merged)
                }
                (Total::Native(sum), Total::Native(d)) if !restarted => {
                    let mut merged = sum.clone();
                    match merged.add(&d) {
                        Ok(_) => Total::Native(merged),
                        // Not addable (cannot happen for exponential histograms): restart.
                        Err(_) => Total::Native(d),
                    }
                }
                // A restart, or the series changed type: start again from this point.
                (_, d) => d,
            };
            stream.last_ns = time_ns;
            stream.touched = now;
            return Ok(stream.total.clone());
        }
        if streams.len() >= self.max_streams {
            streams.retain(|_, s| now.duration_since(s.touched) <= IDLE_EXPIRY);
            if streams.len() >= self.max_streams {
                return Err(DeltaError::TooManyStreams {
                    limit: self.max_streams,
                    series: key.to_string(),
                });
            }
        }
        streams.insert(
            key.clone(),
            Stream {
                last_ns: time_ns,
                touched: now,
                total: delta.clone(),
            },
        );
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)])
    }

    #[test]
    fn contiguous_deltas_accumulate_and_overlap_restarts() {
        let t = DeltaTracker::new(0);
        let k = key("a_total");
        assert_eq!(t.add_number(&k, 0, 10, 2.0).unwrap(), 2.0);
        assert_eq!(t.add_number(&k, 10, 20, 3.0).unwrap(), 5.0);
        // A gap still accumulates.
        assert_eq!(t.add_number(&k, 30, 40, 1.0).unwrap(), 6.0);
        // Not after the last point: refused, total unchanged.
        let err = t.add_number(&k, 30, 40, 1.0).unwrap_err();
        assert!(matches!(err, DeltaError::OutOfOrder { last_ns: 40, .. }), "{err}");
        // Overlapping the counted interval: restart from this value.
        assert_eq!(t.add_number(&k, 35, 50, 4.0).unwrap(), 4.0);
        assert_eq!(t.add_number(&k, 50, 60, 1.0).unwrap(), 5.0);
    }

    #[test]
    fn stream_limit_refuses_new_series_only() {
        let t = DeltaTracker::new(1);
        t.add_number(&key("a"), 0, 1, 1.0).unwrap();
        let err = t.add_number(&key("b"), 0, 1, 1.0).unwrap_err();
        assert!(matches!(err, DeltaError::TooManyStreams { limit: 1, .. }));
        assert_eq!(t.add_number(&key("a"), 1, 2, 1.0).unwrap(), 2.0);
        assert_eq!(t.len(), 1);
    }
}
