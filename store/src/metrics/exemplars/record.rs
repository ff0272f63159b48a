//! The exemplar log record: a version byte, then JSON of the exemplars with their series.
//!
//! Labels are written in full with every exemplar: exemplars are few next to samples (one
//! per bucket per scrape at most, usually far fewer), and a self-contained record needs no
//! series definitions to be replayed or checkpointed. Values are written as their bit
//! pattern, so NaN and infinities survive exactly (JSON has no literal for them).

use serde::{Deserialize, Serialize};

use crate::model::Labels;

use super::types::Exemplar;

/// Version byte of an exemplar record.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Series labels.
    s: Labels,
    /// Exemplar labels.
    l: Labels,
    /// Timestamp in milliseconds.
    t: i64,
    /// Value as `f64::to_bits`.
    v: u64,
}

/// Encodes exemplars (with their series) as one record.
pub(super) fn encode(exemplars: &[(Labels, Exemplar)]) -> Vec<u8> {
    let mut list = Vec::with_capacity(exemplars.len());
    for (series, e) in exemplars {
        list.push(Stored {
            s: series.clone(),
            l: e.labels.clone(),
            t: e.timestamp_ms,
            v: e.value.to_bits(),
        });
    }
    let mut buf = vec![VERSION];
    // Serialising strings and integers cannot fail.
    if serde_json::to_writer(&mut buf, &list).is_err() {
        buf.truncate(1);
        buf.extend_from_slice(b"[]");
    }
    buf
}

/// Decodes a record written by [`encode`].
pub(super) fn decode(payload: &[u8]) -> Result<Vec<(Labels, Exemplar)>, String> {
    let list: Vec<Stored> = match payload.split_first() {
        Some((&VERSION, rest)) => serde_json::from_slice(rest).map_err(|e| e.to_string())?,
        Some((v, _)) => return Err(format!("unknown exemplar record version {v}")),
        None => return Err("empty exemplar record".to_string()),
    };
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        out.push((
            s.s,
            Exemplar {
                labels: s.l,
                value: f64::from_bits(s.v),
                timestamp_ms: s.t,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn record_round_trips_nan_and_unicode() {
        let list = vec![(
            Labels::from_pairs([("__name__", "x_bucket"), ("le", "+Inf")]),
            Exemplar {
                labels: Labels::from_pairs([("trace_id", "ä0")]),
                value: f64::NAN,
                timestamp_ms: -5,
            },
        )];
        let back = decode(&encode(&list)).unwrap();
        assert_eq!(back[0].0, list[0].0);
        assert_eq!(back[0].1.labels, list[0].1.labels);
        assert_eq!(back[0].1.timestamp_ms, -5);
        assert_eq!(back[0].1.value.to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn damaged_records_are_errors() {
        let buf = encode(&[]);
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, b'[', b']']).is_err());
        assert!(decode(&buf[..buf.len() - 1]).is_err());
    }
}
