//! Memory accounting of the head and the gate that refuses new series when it is full.
//!
//! The figures follow what the head really allocates per series (measured with a counting
//! allocator in the test below): the labels (one allocation shared by the series and the
//! WAL definition), its slot in the series map and an entry in each of its two tables, the
//! postings entries (`Postings::add`: a copy of every label value that is new to the
//! index, an id in each list) and the samples' chunks (`SeriesChunks::bytes`: each
//! chunk's stream by its allocation, the open one's by capacity since it grows ahead of
//! its length, and each chunk's entry in the series), and the native histogram stream
//! (`HistogramChunk::bytes`: its allocation plus its 48-byte box once it holds a sample).

use super::series_map::{SLOT_BYTES, TABLE_ENTRY_BYTES};
use crate::metrics::postings::heap_alloc;
use crate::model::Labels;

/// Bytes per series besides its labels and postings: its slot in the series map's slab and
/// its entry in each of the map's two tables, at the average load of a hash table that
/// doubles when 7/8 full (between 7/16 and 7/8: ~2/3).
const SERIES_FIXED_BYTES: u64 = (SLOT_BYTES + 2 * TABLE_ENTRY_BYTES * 3 / 2) as u64;

/// What one series costs in the head without its samples and postings entries (which
/// `Postings::add` counts): the fixed part and its labels' one allocation.
pub(crate) fn series_bytes(labels: &Labels) -> u64 {
    SERIES_FIXED_BYTES + heap_alloc(labels.heap_bytes())
}

/// Whether new series may be created, decided per append against the head memory budget:
/// bytes held elsewhere (heads waiting to be written as blocks) plus the live head's own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeriesGate {
    /// Bytes of frozen heads, which count toward the same budget.
    pub other_bytes: u64,
    /// The head memory budget (`head_memory_bytes`); 0 = no limit.
    pub limit: u64,
}

/// The default gate (limit 0) lets every new series in: unit tests, WAL replay.
impl SeriesGate {
    /// True when a new series may be created in a head holding `head_bytes`.
    pub(crate) fn admits(&self, head_bytes: u64) -> bool {
        self.limit == 0 || head_bytes.saturating_add(self.other_bytes) < self.limit
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::append::AppendReport;
    use crate::metrics::head::rules::AppendRules;
    use crate::metrics::head::Head;
    use crate::model::Sample;

    fn rules() -> AppendRules {
        AppendRules {
            limits: crate::metrics::append::SeriesLimits::default(),
            out_of_order_window_ms: 600_000,
            max_sample_age_ms: 0,
            max_future_ms: 0,
        }
    }

    /// Labels like a high-cardinality burst: a shared metric name and job, one unique id.
    fn burst_labels(i: usize) -> Labels {
        Labels::from_pairs([
            ("__name__", "http_requests_total".to_string()),
            ("job", "api".to_string()),
            ("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
            ("request_id", format!("{i:016x}-{:08x}", i * 7919)),
        ])
    }

    /// The accounted bytes stay within a factor of what the head really allocates, for
    /// series alone and for series with samples: RSS under a burst follows the budget.
    #[test]
    fn accounting_tracks_real_allocations() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        // The labels are made inside the measurement: the head keeps them.
        let real = allocation_counter::measure(|| {
            for i in 0..20_000 {
                let samples = [Sample::new(1_000 + i as i64, 1.0)];
                head.append_series(burst_labels(i as usize), &samples, &rules(), 0, &mut report);
            }
        })
        .bytes_current;
        let accounted = head.bytes() as i64;
        let ratio = accounted as f64 / real as f64;
        eprintln!("20k series, 1 sample each: real {real} B, accounted {accounted} B, ratio {ratio:.2}");
        assert!((0.9..=1.6).contains(&ratio), "ratio {ratio:.2}");

        let labels: Vec<Labels> = (0..5_000).map(burst_labels).collect();
        let accounted_before = head.bytes() as i64;
        let real = allocation_counter::measure(|| {
            for t in 0..40 {
                for (i, l) in labels.iter().enumerate() {
                    let samples = [Sample::new(100_000 + t * 1000 + i as i64, 1.0)];
                    head.append_series(l.clone(), &samples, &rules(), 0, &mut report);
                }
            }
        })
        .bytes_current;
        let accounted = head.bytes() as i64 - accounted_before;
        let ratio = accounted as f64 / real as f64;
        eprintln!("200k more samples: real {real} B, accounted {accounted} B, ratio {ratio:.2}");
        assert!((0.9..=1.6).contains(&ratio), "ratio {ratio:.2}");
    }

    /// Labels like a node exporter's: every value shared by many series.
    fn node_labels(i: usize) -> Labels {
        const MODES: [&str; 8] = [
            "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
        ];
        Labels::from_pairs([
            ("__name__", "node_cpu_seconds_total".to_string()),
            ("cpu", (i / 8 % 16).to_string()),
            ("instance", format!("host-{:04}:9100", i / 128)),
            ("job", "node".to_string()),
            ("mode", MODES[i % 8].to_string()),
        ])
    }

    /// Series whose label values other series share cost the head no copy of them: the
    /// accounting follows that case too (the usual one).
    #[test]
    fn accounting_tracks_real_allocations_of_shared_values() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let real = allocation_counter::measure(|| {
            for i in 0..20_000 {
                let samples = [Sample::new(1_000, 1.0)];
                head.append_series(node_labels(i), &samples, &rules(), 0, &mut report);
            }
        })
        .bytes_current;
        let accounted = head.bytes() as i64;
        let ratio = accounted as f64 / real as f64;
        eprintln!("20k node series, 1 sample each: real {real} B, accounted {accounted} B, ratio {ratio:.2}");
        assert!((0.9..=1.6).contains(&ratio), "ratio {ratio:.2}");
    }

    #[test]
    fn gate_refuses_at_the_limit() {
        let gate = SeriesGate {
            other_bytes: 100,
            limit: 1_000,
        };
        assert!(gate.admits(899));
        assert!(!gate.admits(900));
        assert!(SeriesGate::default().admits(u64::MAX));
    }
}
