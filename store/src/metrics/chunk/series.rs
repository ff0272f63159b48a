//! One series' samples in the head as a run of chunks: full (closed) chunks in time
//! order and the open chunk new samples are appended to.
//!
//! Chunks never overlap in time. An in-order sample (newer than every sample held) is
//! appended to the open chunk; an out-of-order one is inserted by decoding the one chunk
//! it falls into (the first whose newest timestamp is not older than it), inserting, and
//! encoding that chunk again, split in two when it is over [`MAX_SAMPLES`]. Out-of-order
//! samples are rare and bounded by the out-of-order window, so re-encoding one chunk of
//! at most 2 × 120 samples per such sample costs less than keeping a second, unordered
//! structure every read would have to merge.

use super::closed::ClosedChunk;
use super::open::{OpenChunk, MAX_SAMPLES};
use crate::model::Sample;

/// Bytes the allocator adds to each chunk stream's allocation (header and rounding).
const ALLOCATION_OVERHEAD: u64 = 16;

/// A series' samples, compressed, sorted by timestamp, without duplicate timestamps.
#[derive(Debug, Default)]
pub(crate) struct SeriesChunks {
    /// A boxed slice rather than a `Vec`: 8 bytes less per series, and no spare capacity
    /// (a chunk closes once per 120 samples, so re-allocating the list then costs little).
    closed: Box<[ClosedChunk]>,
    open: Option<OpenChunk>,
    /// Sum of the closed chunks' stream bytes (a series' chunks in one head are far below
    /// 4 GiB: the head is cut every block range).
    closed_bytes: u32,
    len: u32,
}

/// Where a timestamp falls: a closed chunk (by index) or the open chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Closed(usize),
    Open,
}

impl SeriesChunks {
    /// Number of samples.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no sample is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Newest timestamp held.
    pub(crate) fn last_t(&self) -> Option<i64> {
        match &self.open {
            Some(open) => Some(open.max_t()),
            None => self.closed.last().map(ClosedChunk::max_t),
        }
    }

    /// Bytes the samples take: chunk streams by their allocation, plus each chunk's entry.
    pub(crate) fn bytes(&self) -> u64 {
        let entries = self.closed.len() as u64 * std::mem::size_of::<ClosedChunk>() as u64;
        let allocations = self.closed.len() as u64 * ALLOCATION_OVERHEAD;
        let open = self
            .open
            .as_ref()
            .map_or(0, |o| o.allocated() as u64 + ALLOCATION_OVERHEAD);
        entries + allocations + u64::from(self.closed_bytes) + open
    }

    /// The closed chunks, oldest first.
    #[cfg(test)]
    pub(crate) fn closed_chunks(&self) -> &[ClosedChunk] {
        &self.closed
    }

    /// The open chunk's encoding.
    #[cfg(test)]
    pub(crate) fn open_encoding(&self) -> Option<super::encoding::Encoding> {
        self.open.as_ref().map(OpenChunk::encoding)
    }

    /// Bytes written in the open chunk's stream.
    #[cfg(test)]
    pub(crate) fn open_stream_len(&self) -> usize {
        self.open.as_ref().map_or(0, OpenChunk::stream_len)
    }

    /// Number of chunks (closed and open).
    #[cfg(test)]
    pub(crate) fn num_chunks(&self) -> usize {
        self.closed.len() + usize::from(self.open.is_some())
    }

    /// Inserts `s` in timestamp order; returns false (changing nothing) when a sample with
    /// its timestamp is held already.
    pub(crate) fn insert(&mut self, s: Sample) -> bool {
        if self.last_t().is_none_or(|last| last < s.timestamp_ms) {
            self.push(s);
            self.len += 1;
            return true;
        }
        let Some(slot) = self.slot_of(s.timestamp_ms) else {
            return false;
        };
        let mut samples = self.decode(slot);
        match samples.binary_search_by_key(&s.timestamp_ms, |x| x.timestamp_ms) {
            Ok(_) => false,
            Err(i) => {
                samples.insert(i, s);
                self.replace(slot, &samples);
                self.len += 1;
                true
            }
        }
    }

    /// The value held at timestamp `t`.
    pub(crate) fn get(&self, t: i64) -> Option<f64> {
        let slot = self.slot_of(t)?;
        let found = match slot {
            Slot::Open => self.open.as_ref()?.iter().find(|s| s.timestamp_ms >= t),
            Slot::Closed(i) => self.closed.get(i)?.iter().find(|s| s.timestamp_ms >= t),
        };
        found.filter(|s| s.timestamp_ms == t).map(|s| s.value)
    }

    /// Removes the sample at `s`'s timestamp if its value has `s`'s bits; returns whether
    /// it did.
    pub(crate) fn remove(&mut self, s: Sample) -> bool {
        let Some(slot) = self.slot_of(s.timestamp_ms) else {
            return false;
        };
        let mut samples = self.decode(slot);
        let Ok(i) = samples.binary_search_by_key(&s.timestamp_ms, |x| x.timestamp_ms) else {
            return false;
        };
        if samples
            .get(i)
            .is_none_or(|x| x.value.to_bits() != s.value.to_bits())
        {
            return false;
        }
        samples.remove(i);
        self.replace(slot, &samples);
        self.len -= 1;
        true
    }

    /// Appends the samples in `[start, end]` to `out`, decoding only the chunks that
    /// overlap the range.
    pub(crate) fn range(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        if start > end {
            return;
        }
        let first = self.closed.partition_point(|c| c.max_t() < start);
        let last = self.closed.partition_point(|c| c.min_t() <= end).max(first);
        let in_range = self.closed.get(first..last).unwrap_or_default();
        let open = self
            .open
            .as_ref()
            .filter(|o| o.max_t() >= start && o.min_t() <= end);
        // Room for every sample of the chunks read, at once: growing the output as they
        // come moved each series' samples ~log2(n) times (3 % of a range query's time).
        let mut count = open.map_or(0, |o| usize::from(o.count()));
        for chunk in in_range {
            count += usize::from(chunk.count());
        }
        out.reserve(count);
        for chunk in in_range {
            chunk.push_in_range(start, end, out);
        }
        if let Some(open) = open {
            open.push_in_range(start, end, out);
        }
    }

    /// Every sample, in order.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len());
        self.range(i64::MIN, i64::MAX, &mut out);
        out
    }

    /// Appends `s`, newer than every sample held, to the open chunk (closing it first when
    /// it is full).
    fn push(&mut self, s: Sample) {
        match self.open.take() {
            Some(mut open) if !open.is_full() => {
                open.push(s);
                self.open = Some(open);
            }
            full => {
                if let Some(open) = full {
                    self.close(open);
                }
                self.open = Some(OpenChunk::new(s));
            }
        }
    }

    fn close(&mut self, open: OpenChunk) {
        let closed = ClosedChunk::from_open(open);
        self.closed_bytes = self.closed_bytes.saturating_add(closed.data_len() as u32);
        let mut all = std::mem::take(&mut self.closed).into_vec();
        all.reserve_exact(1);
        all.push(closed);
        self.closed = all.into_boxed_slice();
    }

    /// The chunk a sample at `t` belongs in when it is not newer than every sample: the
    /// first chunk whose newest timestamp is at or after `t`.
    fn slot_of(&self, t: i64) -> Option<Slot> {
        let i = self.closed.partition_point(|c| c.max_t() < t);
        if i < self.closed.len() {
            return Some(Slot::Closed(i));
        }
        self.open.as_ref().filter(|o| o.max_t() >= t).map(|_| Slot::Open)
    }

    fn decode(&self, slot: Slot) -> Vec<Sample> {
        match slot {
            Slot::Open => self.open.as_ref().map(|o| o.iter().collect()),
            Slot::Closed(i) => self.closed.get(i).map(|c| c.iter().collect()),
        }
        .unwrap_or_default()
    }

    /// Replaces the chunk at `slot` by chunks holding `samples` (sorted, none outside the
    /// gap between the neighbouring chunks): none when empty, two when over the limit.
    fn replace(&mut self, slot: Slot, samples: &[Sample]) {
        let pieces: Vec<&[Sample]> = if samples.len() > usize::from(MAX_SAMPLES) {
            let (a, b) = samples.split_at(samples.len() / 2);
            vec![a, b]
        } else if samples.is_empty() {
            Vec::new()
        } else {
            vec![samples]
        };
        let mut encoded: Vec<OpenChunk> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            encoded.extend(OpenChunk::encode(piece));
        }
        match slot {
            Slot::Open => {
                self.open = encoded.pop();
                for chunk in encoded {
                    self.close(chunk);
                }
            }
            Slot::Closed(i) => {
                if let Some(old) = self.closed.get(i) {
                    self.closed_bytes = self.closed_bytes.saturating_sub(old.data_len() as u32);
                }
                let mut closed = Vec::with_capacity(encoded.len());
                for chunk in encoded {
                    let c = ClosedChunk::from_open(chunk);
                    self.closed_bytes = self.closed_bytes.saturating_add(c.data_len() as u32);
                    closed.push(c);
                }
                if i < self.closed.len() {
                    let mut all = std::mem::take(&mut self.closed).into_vec();
                    all.splice(i..=i, closed);
                    self.closed = all.into_boxed_slice();
                }
            }
        }
    }
}
