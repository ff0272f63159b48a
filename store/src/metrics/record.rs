//! The payload of a metric WAL record: series definitions and samples by series ref.
//!
//! Layout (all integers LEB128 varints, signed ones zig-zag encoded):
//!
//! ```text
//! version u8 (=1)
//! series_count, then per series: ref, has_max_t u8, [max_t zigzag], label_count,
//!                                 label_count × (name_len, name, value_len, value)
//! group_count,  then per group:  ref, sample_count, first_ts zigzag, value f64 LE,
//!                                 (sample_count-1) × (ts delta zigzag, value f64 LE)
//! ```
//!
//! A series is defined once (when it is created, and again in the checkpoint that starts
//! the WAL after a head cut) and referenced by its ref afterwards, so labels are not
//! repeated per sample. Values are stored as raw bits so stale markers survive exactly.

use crate::model::{Label, Labels, Sample};

const VERSION: u8 = 1;

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
}

/// Why a record payload could not be decoded (it passed the CRC, so this means a bug or a
/// newer format).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("record ends early at byte {0}")]
    Truncated(usize),
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("label text at byte {0} is not UTF-8")]
    Utf8(usize),
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
                buf.extend_from_slice(&s.value.to_bits().to_le_bytes());
            }
        }
        buf
    }

    /// Decodes a payload produced by [`WalRecord::encode`].
    pub(crate) fn decode(buf: &[u8]) -> Result<WalRecord, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.byte()?;
        if version != VERSION {
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
                let value = f64::from_bits(r.u64_le()?);
                samples.push(Sample::new(ts, value));
            }
            record.samples.push((series_ref, samples));
        }
        Ok(record)
    }
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(DecodeError::Truncated(self.pos));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let end = self.pos + 8;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(self.pos))?;
        let mut arr = [0u8; 8];
        arr.copy_from_slice(bytes);
        self.pos = end;
        Ok(u64::from_le_bytes(arr))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.uvarint()? as usize;
        let start = self.pos;
        let end = start.checked_add(len).ok_or(DecodeError::Truncated(start))?;
        let bytes = self.buf.get(start..end).ok_or(DecodeError::Truncated(start))?;
        self.pos = end;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8(start))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::stale_nan;

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
        };
        let buf = record.encode();
        for cut in 0..buf.len() {
            assert!(WalRecord::decode(&buf[..cut]).is_err());
        }
    }
}
