//! Which partition of the ingest log a batch's items go to.
//!
//! The choice is a hash of what should stay together, the same in every process (xxh64,
//! seed 0): a series' labels (so one series lives in one ingester's head, not scattered
//! over several), a span's trace id (a trace is found in one place), a log record's
//! service (one service's records keep their order), an exemplar's series labels (it goes
//! where its series' samples go). With one partition nothing is hashed.

use std::hash::Hasher;

use didban_store::logs::LogRecord;
use didban_store::traces::Span;
use didban_store::{Labels, SeriesExemplar, SeriesSamples};
use xxhash_rust::xxh64::Xxh64;

use super::message::Batch;

/// `batch` split into one batch per partition that gets something, in partition order.
pub fn split(batch: Batch, partitions: u32) -> Vec<(u32, Batch)> {
    if partitions <= 1 {
        return vec![(0, batch)];
    }
    match batch {
        Batch::Metrics(series) => spread(series, partitions, series_key)
            .into_iter()
            .map(|(p, s)| (p, Batch::Metrics(s)))
            .collect(),
        Batch::Spans(spans) => spread(spans, partitions, span_key)
            .into_iter()
            .map(|(p, s)| (p, Batch::Spans(s)))
            .collect(),
        Batch::Logs(records) => spread(records, partitions, log_key)
            .into_iter()
            .map(|(p, r)| (p, Batch::Logs(r)))
            .collect(),
        Batch::Exemplars(exemplars) => spread(exemplars, partitions, exemplar_key)
            .into_iter()
            .map(|(p, e)| (p, Batch::Exemplars(e)))
            .collect(),
    }
}

/// Groups `items` by `hash(item) % partitions`, keeping their order within each group.
fn spread<T>(items: Vec<T>, partitions: u32, hash: fn(&T) -> u64) -> Vec<(u32, Vec<T>)> {
    let mut groups: Vec<Vec<T>> = (0..partitions).map(|_| Vec::new()).collect();
    for item in items {
        let p = (hash(&item) % u64::from(partitions)) as usize;
        groups[p].push(item);
    }
    let mut out = Vec::new();
    for (p, group) in groups.into_iter().enumerate() {
        if !group.is_empty() {
            out.push((p as u32, group));
        }
    }
    out
}

fn series_key(series: &SeriesSamples) -> u64 {
    labels_key(&series.labels)
}

fn exemplar_key(exemplar: &SeriesExemplar) -> u64 {
    labels_key(&exemplar.series)
}

fn labels_key(labels: &Labels) -> u64 {
    let mut h = Xxh64::new(0);
    for label in labels.iter() {
        h.write(label.name.as_bytes());
        h.write(&[0xff]);
        h.write(label.value.as_bytes());
        h.write(&[0xff]);
    }
    h.finish()
}

fn span_key(span: &Span) -> u64 {
    xxhash_rust::xxh64::xxh64(span.trace_id.as_bytes(), 0)
}

fn log_key(record: &LogRecord) -> u64 {
    xxhash_rust::xxh64::xxh64(record.service.as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_store::{Labels, Sample};

    fn series(job: &str) -> SeriesSamples {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", job)]);
        SeriesSamples::floats(
            labels,
            vec![Sample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        )
    }

    #[test]
    fn a_series_always_goes_to_the_same_partition_and_nothing_is_lost() {
        let batch: Vec<SeriesSamples> = (0..100).map(|i| series(&format!("j{i}"))).collect();
        let first = split(Batch::Metrics(batch.clone()), 4);
        let again = split(Batch::Metrics(batch), 4);
        let mut total = 0;
        for ((p1, b1), (p2, b2)) in first.iter().zip(&again) {
            assert_eq!(p1, p2);
            let (Batch::Metrics(a), Batch::Metrics(b)) = (b1, b2) else {
                panic!()
            };
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x.labels, y.labels);
            }
            total += a.len();
        }
        assert_eq!(total, 100);
        assert!(first.len() > 1, "100 series all hashed into one of 4 partitions");
    }

    #[test]
    fn one_partition_takes_the_batch_whole() {
        let parts = split(Batch::Metrics(vec![series("a"), series("b")]), 1);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, 0);
    }
}
