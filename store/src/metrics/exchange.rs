//! Series with their samples as bytes, for processes that hand each other query data (an
//! ingester answering a querier with what its head holds): the metric WAL record's payload
//! (`metrics::record`, documented there), series `i` defined under ref `i`. Values keep
//! their bits (stale markers survive), native histograms keep every field.
//!
//! Several such sets (the answers to several reads at once) are a varint count, then each
//! set's bytes with their length in front.

use crate::metrics::record::{SeriesDef, WalRecord};
use crate::metrics::varint::{put_bytes, put_uvarint, Reader};
use crate::model::SeriesSamples;

/// Why bytes are not a series exchange (a peer of another version, or damage).
#[derive(Debug, thiserror::Error)]
#[error("series exchange: {0}")]
pub struct ExchangeError(String);

/// Encodes `series` (each with its samples in time order).
pub fn encode_series(series: &[SeriesSamples]) -> Vec<u8> {
    let mut record = WalRecord::default();
    for (i, s) in series.iter().enumerate() {
        let series_ref = i as u64;
        record.series.push(SeriesDef {
            series_ref,
            max_t: None,
            labels: s.labels.clone(),
        });
        if !s.samples.is_empty() {
            record.samples.push((series_ref, s.samples.clone()));
        }
        if !s.histograms.is_empty() {
            record.histograms.push((series_ref, s.histograms.clone()));
        }
    }
    record.encode()
}

/// Decodes what [`encode_series`] wrote, series in the order they were encoded.
pub fn decode_series(bytes: &[u8]) -> Result<Vec<SeriesSamples>, ExchangeError> {
    let record = WalRecord::decode(bytes).map_err(|e| ExchangeError(e.to_string()))?;
    let mut out = Vec::with_capacity(record.series.len());
    for (i, def) in record.series.into_iter().enumerate() {
        if def.series_ref != i as u64 {
            return Err(ExchangeError(format!(
                "series {i} is defined under ref {}",
                def.series_ref
            )));
        }
        out.push(SeriesSamples {
            labels: def.labels,
            samples: Vec::new(),
            histograms: Vec::new(),
        });
    }
    for (series_ref, samples) in record.samples {
        let Some(s) = usize::try_from(series_ref).ok().and_then(|i| out.get_mut(i)) else {
            return Err(ExchangeError(format!(
                "samples for undefined series ref {series_ref}"
            )));
        };
        s.samples = samples;
    }
    for (series_ref, histograms) in record.histograms {
        let Some(s) = usize::try_from(series_ref).ok().and_then(|i| out.get_mut(i)) else {
            return Err(ExchangeError(format!(
                "histograms for undefined series ref {series_ref}"
            )));
        };
        s.histograms = histograms;
    }
    Ok(out)
}

/// Encodes several sets of series (each as [`encode_series`]), in order.
pub fn encode_series_sets(sets: &[Vec<SeriesSamples>]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_uvarint(&mut buf, sets.len() as u64);
    for set in sets {
        put_bytes(&mut buf, &encode_series(set));
    }
    buf
}

/// Decodes what [`encode_series_sets`] wrote, the sets in the order they were encoded.
pub fn decode_series_sets(bytes: &[u8]) -> Result<Vec<Vec<SeriesSamples>>, ExchangeError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let n = r.count().map_err(|e| ExchangeError(e.to_string()))?;
    let mut sets = Vec::with_capacity(n);
    for i in 0..n {
        let set = r.bytes().map_err(|e| ExchangeError(format!("set {i}: {e}")))?;
        sets.push(decode_series(set).map_err(|e| ExchangeError(format!("set {i}: {}", e.0)))?);
    }
    if !r.at_end() {
        return Err(ExchangeError(format!(
            "{} bytes after the {n} sets",
            bytes.len().saturating_sub(r.pos)
        )));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{stale_nan, HistogramSample, Labels, Sample};

    #[test]
    fn series_survive_bit_for_bit_and_garbage_is_refused() {
        let h = crate::model::FloatHistogram {
            count: 3.0,
            sum: 1.5,
            ..Default::default()
        };
        let series = vec![
            SeriesSamples {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "a")]),
                samples: vec![
                    Sample::new(1000, 1.0),
                    Sample::new(2000, stale_nan()),
                    Sample::new(3000, -0.0),
                ],
                histograms: Vec::new(),
            },
            SeriesSamples {
                labels: Labels::from_pairs([("__name__", "lat"), ("job", "b")]),
                samples: Vec::new(),
                histograms: vec![HistogramSample::new(1500, h)],
            },
            SeriesSamples {
                labels: Labels::from_pairs([("__name__", "inf")]),
                samples: vec![Sample::new(-5, f64::INFINITY)],
                histograms: Vec::new(),
            },
        ];
        let back = decode_series(&encode_series(&series)).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in series.iter().zip(&back) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.histograms, b.histograms);
            let bits = |s: &[Sample]| {
                s.iter()
                    .map(|x| (x.timestamp_ms, x.value.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&a.samples), bits(&b.samples));
        }
        assert!(decode_series(&[]).is_err());
        assert!(decode_series(&[9, 1, 2, 3]).is_err());
        assert!(decode_series(&encode_series(&[])).unwrap().is_empty());
    }

    #[test]
    fn sets_of_series_come_back_in_order_and_damage_is_named() {
        let up = |v: f64| SeriesSamples {
            labels: Labels::from_pairs([("__name__", "up")]),
            samples: vec![Sample::new(1000, v)],
            histograms: Vec::new(),
        };
        let sets = vec![vec![up(1.0)], Vec::new(), vec![up(2.0), up(3.0)]];
        let bytes = encode_series_sets(&sets);
        assert_eq!(decode_series_sets(&bytes).unwrap(), sets);
        assert!(decode_series_sets(&encode_series_sets(&[])).unwrap().is_empty());
        let cut = decode_series_sets(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(cut.to_string().contains("set 2"), "{cut}");
        let mut longer = bytes.clone();
        longer.push(0);
        let extra = decode_series_sets(&longer).unwrap_err();
        assert!(extra.to_string().contains("1 bytes after the 3 sets"), "{extra}");
    }
}
