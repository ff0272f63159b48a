//! One message of the ingest log: a batch of one signal, in the form its store's WAL
//! record has (so nothing new is invented for the bytes), behind a version and a signal
//! byte: `[1][signal][record]`, signal 1 = metric series, 2 = spans, 3 = log records,
//! 4 = exemplars (with their series).

use didban_store::logs::LogRecord;
use didban_store::metrics::exchange;
use didban_store::traces::Span;
use didban_store::{SeriesExemplar, SeriesSamples};

const VERSION: u8 = 1;
const METRICS: u8 = 1;
const SPANS: u8 = 2;
const LOGS: u8 = 3;
const EXEMPLARS: u8 = 4;

/// A batch accepted by a receiver, on its way to the process that stores it.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Metric series with their samples.
    Metrics(Vec<SeriesSamples>),
    /// Spans.
    Spans(Vec<Span>),
    /// Log records.
    Logs(Vec<LogRecord>),
    /// Exemplars with the series they belong to.
    Exemplars(Vec<SeriesExemplar>),
}

impl Batch {
    /// The signal's name, as the `signal` label of the self-metrics.
    pub fn signal(&self) -> &'static str {
        match self {
            Batch::Metrics(_) => "metrics",
            Batch::Spans(_) => "traces",
            Batch::Logs(_) => "logs",
            Batch::Exemplars(_) => "exemplars",
        }
    }

    /// How many items (series, spans, records) it holds.
    pub fn len(&self) -> usize {
        match self {
            Batch::Metrics(s) => s.len(),
            Batch::Spans(s) => s.len(),
            Batch::Logs(r) => r.len(),
            Batch::Exemplars(e) => e.len(),
        }
    }

    /// The batch cut in two halves by item (the first half keeps the first items).
    pub fn halves(self) -> (Batch, Batch) {
        match self {
            Batch::Metrics(mut s) => {
                let tail = s.split_off(s.len() / 2);
                (Batch::Metrics(s), Batch::Metrics(tail))
            }
            Batch::Spans(mut s) => {
                let tail = s.split_off(s.len() / 2);
                (Batch::Spans(s), Batch::Spans(tail))
            }
            Batch::Logs(mut r) => {
                let tail = r.split_off(r.len() / 2);
                (Batch::Logs(r), Batch::Logs(tail))
            }
            Batch::Exemplars(mut e) => {
                let tail = e.split_off(e.len() / 2);
                (Batch::Exemplars(e), Batch::Exemplars(tail))
            }
        }
    }

    /// True when the batch holds nothing to store.
    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Metrics(s) => s.is_empty(),
            Batch::Spans(s) => s.is_empty(),
            Batch::Logs(r) => r.is_empty(),
            Batch::Exemplars(e) => e.is_empty(),
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
        Batch::Spans(spans) => (SPANS, didban_store::traces::encode_spans(spans)),
        Batch::Logs(records) => (LOGS, didban_store::logs::encode_batch(records)),
        Batch::Exemplars(exemplars) => (
            EXEMPLARS,
            didban_store::metrics::exemplars::encode_batch(exemplars),
        ),
    };
    let mut out = Vec::with_capacity(2 + record.len());
    out.push(VERSION);
    out.push(signal);
    out.extend_from_slice(&record);
    out
}

/// `batch` as messages of at most `max_bytes` each: encoded whole when it fits, else cut
/// in halves until every part does. `Err` names the size of a single item that does not
/// fit alone.
pub fn encode_within(batch: Batch, max_bytes: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut todo = vec![batch];
    while let Some(b) = todo.pop() {
        let bytes = encode(&b);
        if bytes.len() <= max_bytes {
            out.push(bytes);
        } else if b.len() <= 1 {
            return Err(format!(
                "one {} item is {} bytes encoded, more than the ingest log's message limit of {max_bytes} bytes",
                b.signal(),
                bytes.len()
            ));
        } else {
            let (first, second) = b.halves();
            // Popped first-half first, so the messages keep the batch's order.
            todo.push(second);
            todo.push(first);
        }
    }
    Ok(out)
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
        SPANS => didban_store::traces::decode_spans(record)
            .map(Batch::Spans)
            .map_err(MessageError),
        LOGS => didban_store::logs::decode_batch(record)
            .map(Batch::Logs)
            .map_err(MessageError),
        EXEMPLARS => didban_store::metrics::exemplars::decode_batch(record)
            .map(Batch::Exemplars)
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
    fn a_batch_over_the_limit_is_cut_into_messages_that_fit_in_order() {
        let series: Vec<SeriesSamples> = (0..40)
            .map(|i| {
                let labels = Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string())]);
                SeriesSamples::floats(
                    labels,
                    vec![Sample {
                        timestamp_ms: i,
                        value: 1.0,
                    }],
                )
            })
            .collect();
        let whole = encode(&Batch::Metrics(series.clone())).len();
        let messages = encode_within(Batch::Metrics(series), whole / 3).unwrap();
        assert!(messages.len() >= 3, "{} messages", messages.len());
        let mut times = Vec::new();
        for m in &messages {
            assert!(m.len() <= whole / 3);
            let Batch::Metrics(part) = decode(m).unwrap() else {
                panic!()
            };
            times.extend(part.iter().map(|s| s.samples[0].timestamp_ms));
        }
        assert_eq!(times, (0..40).collect::<Vec<i64>>());
        let one = vec![SeriesSamples::floats(
            Labels::from_pairs([("__name__", "m")]),
            vec![Sample {
                timestamp_ms: 1,
                value: 1.0,
            }],
        )];
        let e = encode_within(Batch::Metrics(one), 4).unwrap_err();
        assert!(e.contains("limit of 4 bytes"), "{e}");
    }

    #[test]
    fn exemplars_survive_the_trip() {
        let exemplars = vec![SeriesExemplar {
            series: Labels::from_pairs([("__name__", "latency_bucket"), ("le", "0.5")]),
            exemplar: didban_store::Exemplar {
                labels: Labels::from_pairs([("trace_id", "abc")]),
                value: 0.3,
                timestamp_ms: 7,
            },
        }];
        let Batch::Exemplars(back) = decode(&encode(&Batch::Exemplars(exemplars.clone()))).unwrap() else {
            panic!("not exemplars");
        };
        assert_eq!(back, exemplars);
    }

    #[test]
    fn damage_is_named() {
        assert!(decode(&[1]).unwrap_err().to_string().contains("too short"));
        assert!(decode(&[9, 1]).unwrap_err().to_string().contains("version 9"));
        assert!(decode(&[1, 7]).unwrap_err().to_string().contains("signal 7"));
        assert!(decode(&[1, 3, b'x']).is_err());
    }
}
