//! One message of the ingest log: a batch of one signal, in the form its store's WAL
//! record has (so nothing new is invented for the bytes), behind a version and a signal
//! byte: `[1][signal][record]`, signal 1 = metric series, 2 = spans, 3 = log records.

use didban_store::logs::LogRecord;
use didban_store::metrics::exchange;
use didban_store::traces::Span;
use didban_store::SeriesSamples;

const VERSION: u8 = 1;
const METRICS: u8 = 1;
const SPANS: u8 = 2;
const LOGS: u8 = 3;

/// A batch accepted by a receiver, on its way to the process that stores it.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Metric series with their samples.
    Metrics(Vec<SeriesSamples>),
    /// Spans.
    Spans(Vec<Span>),
    /// Log records.
    Logs(Vec<LogRecord>),
}

impl Batch {
    /// The signal's name, as the `signal` label of the self-metrics.
    pub fn signal(&self) -> &'static str {
        match self {
            Batch::Metrics(_) => "metrics",
            Batch::Spans(_) => "traces",
            Batch::Logs(_) => "logs",
        }
    }

    /// True when the batch holds nothing to store.
    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Metrics(s) => s.is_empty(),
            Batch::Spans(s) => s.is_empty(),
            Batch::Logs(r) => r.is_empty(),
        }
    }
}

/// Why bytes taken from the stream are not a message (another version, or damage).
#[derive(Debug, thiserror::Error)]
#[error("ingest log message: {0}")]
pub struct MessageError(String);

/// The bytes of `batch`.
pub fn encode(batch: &Batch) -> Vec<u8> {
    let (signal, record) = match batch {
        Batch::Metrics(series) => (METRICS, exchange::encode_series(series)),
        Batch::Spans(spans) => (SPANS, didban_store::traces::encode_batch(spans)),
        Batch::Logs(records) => (LOGS, didban_store::logs::encode_batch(records)),
    };
    let mut out = Vec::with_capacity(2 + record.len());
    out.push(VERSION);
    out.push(signal);
    out.extend_from_slice(&record);
    out
}

/// The batch [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Batch, MessageError> {
    let [version, signal, record @ ..] = bytes else {
        return Err(MessageError(format!("{} bytes is too short", bytes.len())));
    };
    if *version != VERSION {
        return Err(MessageError(format!("unknown version {version}")));
    }
    match *signal {
        METRICS => exchange::decode_series(record)
            .map(Batch::Metrics)
            .map_err(|e| MessageError(e.to_string())),
        SPANS => didban_store::traces::decode_batch(record)
            .map(Batch::Spans)
            .map_err(MessageError),
        LOGS => didban_store::logs::decode_batch(record)
            .map(Batch::Logs)
            .map_err(MessageError),
        other => Err(MessageError(format!("unknown signal {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use didban_store::{Labels, Sample};

    #[test]
    fn a_metric_batch_survives_the_trip() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let series = vec![SeriesSamples::floats(
            labels.clone(),
            vec![Sample {
                timestamp_ms: 5,
                value: 1.5,
            }],
        )];
        let Batch::Metrics(back) = decode(&encode(&Batch::Metrics(series))).unwrap() else {
            panic!("not metrics");
        };
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].labels, labels);
        assert_eq!(
            back[0].samples,
            vec![Sample {
                timestamp_ms: 5,
                value: 1.5
            }]
        );
    }

    #[test]
    fn damage_is_named() {
        assert!(decode(&[1]).unwrap_err().to_string().contains("too short"));
        assert!(decode(&[9, 1]).unwrap_err().to_string().contains("version 9"));
        assert!(decode(&[1, 7]).unwrap_err().to_string().contains("signal 7"));
        assert!(decode(&[1, 3, b'x']).is_err());
    }
}
