//! The payload of a metric WAL record: series definitions and samples by series ref.
//!
//! Layout (all integers LEB128 varints, signed ones zig-zag encoded):
//!
//! ```text
//! version u8 (=2; 1 is read too)
//! series_count, then per series: ref, has_max_t u8, [max_t zigzag], label_count,
//!                                 label_count × (name_len, name, value_len, value)
//! group_count,  then per group:  ref, sample_count, first_ts zigzag, value f64 LE,
//!                                 (sample_count-1) × (ts delta zigzag, value f64 LE)
//! version 2 only:
//! hgroup_count, then per group:  ref, sample_count, first_ts zigzag, histogram,
//!                                 (sample_count-1) × (ts delta zigzag, histogram)
//! ```
//!
//! `histogram` is the byte form of one native histogram documented in
//! `metrics::histogram_codec` (every field of the model, integer or float counts).
//! Records are written as version 2; version 1 records (no histogram section) still decode.
//!
//! A series is defined once (when it is created, and again in the checkpoint that starts
//! the WAL after a head cut) and referenced by its ref afterwards, so labels are not
//! repeated per sample. Values are stored as raw bits so stale markers survive exactly.

use crate::metrics::histogram_codec;
use crate::metrics::varint::{put_bytes, put_f64, put_ivarint, put_uvarint, Reader, VarintError};
use crate::model::{HistogramSample, Label, Labels, Sample};

/// The version written.
const VERSION: u8 = 2;
/// The version before native histograms, still read.
const VERSION_FLOATS_ONLY: u8 = 1;

/// A series definition: its ref, labels and, in checkpoints, its newest timestamp so the
/// ordering rules survive a restart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesDef {
    pub series_ref: u64,
    pub max_t: Option<i64>,
    pub labels: Labels,
}

/// One decoded (or to-be-encoded) WAL record.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WalRecord {
    pub series: Vec<SeriesDef>,
    pub samples: Vec<(u64, Vec<Sample>)>,
    /// Native histogram samples by series ref, each list in timestamp order.
    pub histograms: Vec<(u64, Vec<HistogramSample>)>,
}

impl WalRecord {
    /// True when the record carries no sample of either kind.
    pub(crate) fn has_no_samples(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }
}

/// Why a record payload could not be decoded (it passed the CRC, so this means a bug or a
/// newer format).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error(transparent)]
    Bytes(#[from] VarintError),
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("invalid labels in record: {0}")]
    Labels(String),
}

impl WalRecord {
    /// Encodes the record into a fresh buffer.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64 + self.samples.len() * 32);
        buf.push(VERSION);
        put_uvarint(&mut buf, self.series.len() as u64);
        for s in &self.series {
            put_uvarint(&mut buf, s.series_ref);
            match s.max_t {
                Some(t) => {
                    buf.push(1);
                    put_ivarint(&mut buf, t);
                }
                None => buf.push(0),
            }
            put_uvarint(&mut buf, s.labels.len() as u64);
            for l in s.labels.iter() {
                put_bytes(&mut buf, l.name.as_bytes());
                put_bytes(&mut buf, l.value.as_bytes());
            }
        }
        put_uvarint(&mut buf, self.samples.len() as u64);
        for (series_ref, samples) in &self.samples {
            put_uvarint(&mut buf, *series_ref);
            put_uvarint(&mut buf, samples.len() as u64);
            let mut prev = 0i64;
            for (i, s) in samples.iter().enumerate() {
                if i == 0 {
                    put_ivarint(&mut buf, s.timestamp_ms);
                } else {
                    put_ivarint(&mut buf, s.timestamp_ms.wrapping_sub(prev));
                }
                prev = s.timestamp_ms;
                put_f64(&mut buf, s.value);
            }
        }
        put_uvarint(&mut buf, self.histograms.len() as u64);
        for (series_ref, samples) in &self.histograms {
            put_uvarint(&mut buf, *series_ref);
            put_uvarint(&mut buf, samples.len() as u64);
            let mut prev = 0i64;
            for (i, s) in samples.iter().enumerate() {
                if i == 0 {
                    put_ivarint(&mut buf, s.timestamp_ms);
                } else {
                    put_ivarint(&mut buf, s.timestamp_ms.wrapping_sub(prev));
                }
                prev = s.timestamp_ms;
                histogram_codec::encode(&mut buf, &s.h);
            }
        }
        buf
    }

    /// Decodes a payload produced by [`WalRecord::encode`].
    pub(crate) fn decode(buf: &[u8]) -> Result<WalRecord, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.byte()?;
        if version != VERSION && version != VERSION_FLOATS_ONLY {
            return Err(DecodeError::Version(version));
        }
        let mut record = WalRecord::default();
        let series_count = r.uvarint()?;
        for _ in 0..series_count {
            let series_ref = r.uvarint()?;
            let max_t = match r.byte()? {
                0 => None,
                _ => Some(r.ivarint()?),
            };
            let label_count = r.uvarint()?;
            let mut labels = Vec::new();
            for _ in 0..label_count {
                let name = r.string()?;
                let value = r.string()?;
                labels.push(Label::new(name, value));
            }
            let labels = Labels::new(labels).map_err(|e| DecodeError::Labels(e.to_string()))?;
            record.series.push(SeriesDef {
                series_ref,
                max_t,
                labels,
            });
        }
        let group_count = r.uvarint()?;
        for _ in 0..group_count {
            let series_ref = r.uvarint()?;
            let n = r.uvarint()?;
            let mut samples = Vec::new();
            let mut prev = 0i64;
            for i in 0..n {
                let t = r.ivarint()?;
                let ts = if i == 0 { t } else { prev.wrapping_add(t) };
                prev = ts;
                let value = r.f64()?;
                samples.push(Sample::new(ts, value));
            }
            record.samples.push((series_ref, samples));
        }
        if version == VERSION_FLOATS_ONLY {
            return Ok(record);
        }
        let group_count = r.uvarint()?;
        for _ in 0..group_count {
            let series_ref = r.uvarint()?;
            let n = r.count()?;
            let mut samples = Vec::with_capacity(n);
            let mut prev = 0i64;
            for i in 0..n {
                let t = r.ivarint()?;
                let ts = if i == 0 { t } else { prev.wrapping_add(t) };
                prev = ts;
                samples.push(HistogramSample::new(ts, histogram_codec::decode(&mut r)?));
            }
            record.histograms.push((series_ref, samples));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::histogram_codec::{identical, tests::random_histogram};
    use crate::model::stale_nan;
    use crate::model::FloatHistogram;
    use didban_testkit::rng::SeededRng;

    #[test]
    fn a_version_1_record_still_decodes() {
        // Version 1 is version 2 without the histogram section.
        let record = WalRecord {
            series: vec![SeriesDef {
                series_ref: 7,
                max_t: None,
                labels: Labels::from_pairs([("__name__", "up")]),
            }],
            samples: vec![(7, vec![Sample::new(10, 2.5), Sample::new(20, 3.5)])],
            histograms: Vec::new(),
        };
        let mut v1 = record.encode();
        assert_eq!(v1.pop(), Some(0), "empty histogram section");
        v1[0] = 1;
        let decoded = WalRecord::decode(&v1).unwrap();
        assert_eq!(decoded.series, record.series);
        assert_eq!(decoded.samples, record.samples);
        assert!(decoded.histograms.is_empty());
    }

    #[test]
    fn random_histogram_records_round_trip() {
        let mut rng = SeededRng::new(0x7761_6c32);
        for _ in 0..300 {
            let mut record = WalRecord::default();
            for g in 0..rng.below(4) {
                let mut t = rng.below(1 << 40) as i64 - (1 << 39);
                let mut samples = Vec::new();
                for _ in 0..1 + rng.below(5) {
                    samples.push(HistogramSample::new(t, random_histogram(&mut rng)));
                    t += 1 + rng.below(100_000) as i64;
                }
                record.histograms.push((g * 1000 + rng.below(1000), samples));
            }
            if rng.below(2) == 0 {
                record.samples.push((1, vec![Sample::new(1, 1.0)]));
            }
            let decoded = WalRecord::decode(&record.encode()).unwrap();
            assert_eq!(decoded.samples, record.samples);
            assert_eq!(decoded.histograms.len(), record.histograms.len());
            for ((r1, a), (r2, b)) in decoded.histograms.iter().zip(&record.histograms) {
                assert_eq!(r1, r2);
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    assert_eq!(x.timestamp_ms, y.timestamp_ms);
                    assert!(identical(&x.h, &y.h), "{:?} != {:?}", x.h, y.h);
                }
            }
        }
    }

    #[test]
    fn record_round_trips_including_stale_markers_and_negative_deltas() {
        let record = WalRecord {
            series: vec![SeriesDef {
                series_ref: 300,
                max_t: Some(-5),
                labels: Labels::from_pairs([("__name__", "up"), ("job", "ä")]),
            }],
            samples: vec![(
                300,
                vec![
                    Sample::new(1000, 1.5),
                    Sample::new(900, stale_nan()),
                    Sample::new(i64::MAX, -0.0),
                ],
            )],
            histograms: Vec::new(),
        };
        let decoded = WalRecord::decode(&record.encode()).unwrap();
        assert_eq!(decoded.series, record.series);
        let (r, samples) = &decoded.samples[0];
        assert_eq!(*r, 300);
        for (a, b) in samples.iter().zip(&record.samples[0].1) {
            assert_eq!(a.timestamp_ms, b.timestamp_ms);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
    }

    #[test]
    fn truncated_payload_is_an_error_not_a_panic() {
        let record = WalRecord {
            series: vec![],
            samples: vec![(1, vec![Sample::new(1, 1.0)])],
            histograms: vec![(2, vec![HistogramSample::new(5, FloatHistogram::stale_marker())])],
        };
        let buf = record.encode();
        for cut in 0..buf.len() {
            assert!(WalRecord::decode(&buf[..cut]).is_err());
        }
    }
}
