//! The block index cache: every block's series list and postings are read from
//! `series.parquet` on demand and kept here, shared by all blocks and bounded in bytes
//! (`DbOptions::block_index_cache_bytes`, by default a share of `storage.memory_limit`).
//!
//! Eviction is least-recently-used. Entries are handed out as `Arc`s: a query keeps the
//! index it reads alive however the cache changes meanwhile, and an evicted block's index
//! is read from Parquet again the next time (block files never change). An index larger
//! than the whole limit is handed to its query but not kept.
//!
//! An own small LRU rather than a cache crate: there is one entry per opened block (tens
//! to a few thousand), so a linear scan for the oldest entry at eviction costs nothing next
//! to reading a `series.parquet`, and the loader runs outside the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::index::BlockIndex;

/// Figures of the cache for self-monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockIndexCacheStats {
    /// Bytes charged for the indexes held now.
    pub bytes: u64,
    /// The byte limit.
    pub limit_bytes: u64,
    /// Indexes held now.
    pub entries: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that read `series.parquet`.
    pub misses: u64,
    /// Indexes dropped to stay under the limit.
    pub evictions: u64,
}

struct Entry {
    index: Arc<BlockIndex>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<IndexKey, Entry>,
    bytes: u64,
    tick: u64,
}

/// What an entry holds: the block's id in this process and which part of its series list
/// ([`WHOLE_BLOCK`] or the number of a metric-name part).
pub(crate) type IndexKey = (u64, u32);

/// The part number of an index over a block's whole series list.
pub(crate) const WHOLE_BLOCK: u32 = u32::MAX;

/// The shared, byte-bounded cache of block indexes.
pub(crate) struct BlockIndexCache {
    limit: u64,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl BlockIndexCache {
    /// An empty cache holding at most `limit` bytes of indexes (0 keeps none).
    pub(crate) fn new(limit: u64) -> BlockIndexCache {
        BlockIndexCache {
            limit,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The index `key`, from the cache or built by `load` (run without the lock;
    /// two queries missing the same block at once may both load it, the first kept).
    pub(crate) fn get_or_load<E>(
        &self,
        key: IndexKey,
        load: impl FnOnce() -> Result<BlockIndex, E>,
    ) -> Result<Arc<BlockIndex>, E> {
        {
            let mut inner = self.inner.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(e) = inner.entries.get_mut(&key) {
                e.last_used = tick;
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(e.index.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let index = Arc::new(load()?);
        let bytes = index.bytes();
        if bytes > self.limit {
            return Ok(index);
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(e) = inner.entries.get_mut(&key) {
            e.last_used = tick;
            return Ok(e.index.clone());
        }
        while inner.bytes + bytes > self.limit {
            let mut oldest: Option<(IndexKey, u64)> = None;
            for (k, e) in &inner.entries {
                if oldest.is_none_or(|(_, t)| e.last_used < t) {
                    oldest = Some((*k, e.last_used));
                }
            }
            let Some((victim, _)) = oldest else {
                break;
            };
            if let Some(e) = inner.entries.remove(&victim) {
                inner.bytes = inner.bytes.saturating_sub(e.index.bytes());
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                index: index.clone(),
                last_used: tick,
            },
        );
        Ok(index)
    }

    /// Forgets every index of block `block` (it was closed or deleted); not counted as
    /// evictions.
    pub(crate) fn remove_block(&self, block: u64) {
        let mut inner = self.inner.lock();
        let mut freed = 0u64;
        inner.entries.retain(|key, e| {
            if key.0 == block {
                freed += e.index.bytes();
                return false;
            }
            true
        });
        inner.bytes = inner.bytes.saturating_sub(freed);
    }

    /// The cache's figures now.
    pub(crate) fn stats(&self) -> BlockIndexCacheStats {
        let inner = self.inner.lock();
        BlockIndexCacheStats {
            bytes: inner.bytes,
            limit_bytes: self.limit,
            entries: inner.entries.len() as u64,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::block::meta::BlockSeries;
    use crate::model::Labels;

    fn index(n: usize) -> BlockIndex {
        let mut series = Vec::new();
        for i in 0..n {
            series.push(BlockSeries {
                labels: Labels::from_pairs([("__name__", "m".to_string()), ("id", format!("{i:06}"))]),
                first_row: i as u64,
                row_count: 1,
                min_t: 0,
                max_t: 0,
                value_scale: None,
                scaled_base: 0,
            });
        }
        BlockIndex::from_series(0, series)
    }

    fn load(n: usize) -> impl FnOnce() -> Result<BlockIndex, std::convert::Infallible> {
        move || Ok(index(n))
    }

    #[test]
    fn least_recently_used_goes_first_and_the_limit_holds() {
        let one = index(100).bytes();
        let cache = BlockIndexCache::new(one * 3 + one / 2);
        for key in 0..3 {
            cache.get_or_load((key, WHOLE_BLOCK), load(100)).unwrap();
        }
        assert_eq!(cache.stats().entries, 3);
        // Key 0 is used again, so key 1 is the oldest when key 3 arrives.
        cache.get_or_load((0, WHOLE_BLOCK), load(100)).unwrap();
        cache.get_or_load((3, 0), load(100)).unwrap();
        let s = cache.stats();
        assert_eq!((s.entries, s.evictions, s.hits, s.misses), (3, 1, 1, 4));
        assert!(s.bytes <= s.limit_bytes);
        let mut loaded = false;
        cache
            .get_or_load((1, WHOLE_BLOCK), || {
                loaded = true;
                Ok::<_, std::convert::Infallible>(index(100))
            })
            .unwrap();
        assert!(loaded, "the evicted block is read again");
        cache
            .get_or_load(
                (0, WHOLE_BLOCK),
                || -> Result<BlockIndex, std::convert::Infallible> {
                    panic!("block 0 was used recently and must still be cached")
                },
            )
            .unwrap();
    }

    #[test]
    fn an_evicted_index_stays_valid_for_whoever_holds_it() {
        let one = index(100).bytes();
        let cache = BlockIndexCache::new(one);
        let held = cache.get_or_load((7, 0), load(100)).unwrap();
        cache.get_or_load((8, 0), load(100)).unwrap();
        assert_eq!(cache.stats().evictions, 1);
        assert_eq!(held.series.len(), 100);
        assert_eq!(
            held.postings
                .select(&[crate::model::LabelMatcher::equal("id", "000042")]),
            vec![42]
        );
    }

    #[test]
    fn an_index_over_the_whole_limit_is_served_but_not_kept_and_blocks_leave_whole() {
        let cache = BlockIndexCache::new(1_000);
        let big = cache.get_or_load((1, WHOLE_BLOCK), load(1_000)).unwrap();
        assert_eq!(big.series.len(), 1_000);
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes), (0, 0));
        // Removing a block drops all its parts and nothing else.
        let cache = BlockIndexCache::new(index(10).bytes() * 3);
        cache.get_or_load((1, 0), load(10)).unwrap();
        cache.get_or_load((1, 1), load(10)).unwrap();
        cache.get_or_load((2, 0), load(10)).unwrap();
        cache.remove_block(1);
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (1, index(10).bytes(), 0));
    }
}
