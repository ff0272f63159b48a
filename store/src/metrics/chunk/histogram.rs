//! A series' native histogram samples in the head, kept as one byte stream: per sample
//! the timestamp (zig-zag varint: absolute for the first, the delta to the previous one
//! after) and the histogram in the byte form of `metrics::histogram_codec`. Appends in
//! time order add to the end; an out-of-order insert or a removal decodes the stream and
//! writes it again (histogram series are few and such inserts rare, so this stays simple).
//!
//! Size: a histogram with integer counts takes about 25 bytes plus one or two per bucket
//! (a 10-bucket exponential histogram: ~45 B per sample, against ~250 B as a decoded
//! `FloatHistogram` with its vectors); float counts take 8 bytes per bucket and count.

use std::sync::Arc;

use crate::metrics::histogram_codec::{self, identical};
use crate::metrics::varint::{put_ivarint, Reader};
use crate::model::{FloatHistogram, HistogramSample};

/// Bytes of the stream's header besides the stream (its box, once the series holds a
/// histogram).
const FIXED_BYTES: u64 = 48;

/// One series' histogram samples, strictly increasing in timestamp. Every series has one
/// and most never hold a histogram: the stream lives in a box made by the first sample,
/// so a float series pays one pointer for it.
#[derive(Debug, Default)]
pub(crate) struct HistogramChunk(Option<Box<HistogramStream>>);

impl HistogramChunk {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timestamp of the newest sample.
    pub(crate) fn last_t(&self) -> Option<i64> {
        self.0.as_ref().and_then(|s| s.last_t)
    }

    /// Bytes held: the stream by its allocation and its box.
    pub(crate) fn bytes(&self) -> u64 {
        self.0.as_ref().map_or(0, |s| s.bytes())
    }

    /// Every sample, decoded.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<HistogramSample> {
        self.0.as_ref().map_or_else(Vec::new, |s| s.to_vec())
    }

    /// Inserts a sample in timestamp order; an equal timestamp replaces nothing and
    /// returns false.
    pub(crate) fn insert(&mut self, t: i64, h: &FloatHistogram) -> bool {
        self.0.get_or_insert_with(Box::default).insert(t, h)
    }

    /// The histogram at timestamp `t`.
    pub(crate) fn get(&self, t: i64) -> Option<Arc<FloatHistogram>> {
        self.0.as_ref().and_then(|s| s.get(t))
    }

    /// Removes the sample at `t` if it is `h` bit for bit; returns whether it did. The box
    /// goes with the last sample.
    pub(crate) fn remove(&mut self, t: i64, h: &FloatHistogram) -> bool {
        let Some(stream) = self.0.as_mut() else {
            return false;
        };
        let removed = stream.remove(t, h);
        if stream.len == 0 {
            self.0 = None;
        }
        removed
    }

    /// Appends the samples in `[start, end]` to `out`.
    pub(crate) fn range(&self, start: i64, end: i64, out: &mut Vec<HistogramSample>) {
        if let Some(stream) = &self.0 {
            stream.range(start, end, out);
        }
    }
}

/// The samples of a [`HistogramChunk`] that holds any.
#[derive(Debug, Default)]
struct HistogramStream {
    stream: Vec<u8>,
    len: usize,
    last_t: Option<i64>,
}

impl HistogramStream {
    /// Bytes held: the stream by its allocation and the box.
    fn bytes(&self) -> u64 {
        FIXED_BYTES + self.stream.capacity() as u64
    }

    fn push(&mut self, t: i64, h: &FloatHistogram) {
        match self.last_t {
            None => put_ivarint(&mut self.stream, t),
            Some(prev) => put_ivarint(&mut self.stream, t.wrapping_sub(prev)),
        }
        histogram_codec::encode(&mut self.stream, h);
        self.len += 1;
        self.last_t = Some(t);
    }

    /// Every sample, decoded. The stream was written by `push`, so decoding fails only on
    /// a bug; what decoded before the failure is returned.
    fn to_vec(&self) -> Vec<HistogramSample> {
        let mut out = Vec::with_capacity(self.len);
        let mut r = Reader {
            buf: &self.stream,
            pos: 0,
        };
        let mut prev = 0i64;
        while !r.at_end() {
            let Ok(d) = r.ivarint() else {
                break;
            };
            let t = if out.is_empty() { d } else { prev.wrapping_add(d) };
            prev = t;
            let Ok(h) = histogram_codec::decode(&mut r) else {
                break;
            };
            out.push(HistogramSample {
                timestamp_ms: t,
                h: Arc::new(h),
            });
        }
        out
    }

    fn rewrite(&mut self, samples: &[HistogramSample]) {
        let mut next = HistogramStream::default();
        for s in samples {
            next.push(s.timestamp_ms, &s.h);
        }
        next.stream.shrink_to_fit();
        *self = next;
    }

    /// Inserts a sample in timestamp order; an equal timestamp replaces nothing and
    /// returns false.
    fn insert(&mut self, t: i64, h: &FloatHistogram) -> bool {
        if self.last_t.is_none_or(|last| t > last) {
            self.push(t, h);
            return true;
        }
        let mut samples = self.to_vec();
        let Err(i) = samples.binary_search_by_key(&t, |s| s.timestamp_ms) else {
            return false;
        };
        samples.insert(i, HistogramSample::new(t, h.clone()));
        self.rewrite(&samples);
        true
    }

    /// The histogram at timestamp `t`.
    fn get(&self, t: i64) -> Option<Arc<FloatHistogram>> {
        if self.last_t.is_none_or(|last| t > last) {
            return None;
        }
        self.to_vec()
            .into_iter()
            .find(|s| s.timestamp_ms == t)
            .map(|s| s.h)
    }

    /// Removes the sample at `t` if it is `h` bit for bit; returns whether it did.
    fn remove(&mut self, t: i64, h: &FloatHistogram) -> bool {
        let mut samples = self.to_vec();
        let Ok(i) = samples.binary_search_by_key(&t, |s| s.timestamp_ms) else {
            return false;
        };
        if samples.get(i).is_none_or(|s| !identical(&s.h, h)) {
            return false;
        }
        samples.remove(i);
        self.rewrite(&samples);
        true
    }

    /// Appends the samples in `[start, end]` to `out`.
    fn range(&self, start: i64, end: i64, out: &mut Vec<HistogramSample>) {
        if self.len == 0 || start > end {
            return;
        }
        for s in self.to_vec() {
            if s.timestamp_ms >= start && s.timestamp_ms <= end {
                out.push(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Span;

    fn h(count: f64) -> FloatHistogram {
        FloatHistogram {
            count,
            sum: count * 1.5,
            zero_count: 1.0,
            positive_spans: vec![
                Span {
                    offset: -2,
                    length: 5,
                },
                Span { offset: 3, length: 5 },
            ],
            positive_buckets: (0..10).map(|i| (count + i as f64).floor()).collect(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn in_order_out_of_order_duplicates_and_removal() {
        let mut c = HistogramChunk::default();
        assert!(c.insert(1000, &h(10.0)));
        assert!(c.insert(3000, &h(30.0)));
        assert!(c.insert(2000, &h(20.0)), "out of order");
        assert!(!c.insert(2000, &h(21.0)), "same timestamp");
        let all = c.to_vec();
        let ts: Vec<i64> = all.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![1000, 2000, 3000]);
        assert_eq!(*all[1].h, h(20.0));
        assert_eq!(c.get(3000).as_deref(), Some(&h(30.0)));
        assert!(c.get(2500).is_none());
        assert!(!c.remove(2000, &h(21.0)), "different histogram");
        assert!(c.remove(2000, &h(20.0)));
        assert_eq!(c.len(), 2);
        let mut out = Vec::new();
        c.range(1500, 5000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp_ms, 3000);
        assert!(c.insert(4000, &FloatHistogram::stale_marker()));
        assert!(c.get(4000).unwrap().is_stale());
    }

    /// The figure in the module doc: a 10-bucket integer histogram every 15 s.
    #[test]
    fn integer_histograms_take_about_45_bytes_per_sample() {
        let mut c = HistogramChunk::default();
        for i in 0..1000 {
            c.insert(i * 15_000, &h(1000.0 + i as f64));
        }
        let per_sample = c.0.as_ref().unwrap().stream.len() as f64 / 1000.0;
        eprintln!("{per_sample:.1} bytes per histogram sample");
        assert!(per_sample < 50.0, "{per_sample}");
    }
}
