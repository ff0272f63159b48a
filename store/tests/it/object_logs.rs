//! Sealed log days on object storage, against a real three-node Garage cluster (and a
//! private PostgreSQL for the metastore): a day over for longer than `seal_after` is
//! committed, merged, uploaded and leaves the data directory; a store on an empty data
//! directory searches it from the bucket; a late record for a sealed day goes into a new
//! index of that day and pages stay in time order across both; retention deletes sealed
//! days from the bucket; a store sharing the metastore sees the days another sealed.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::garage_storage;
use didban_store::logs::{LogOptions, LogQuery, LogRecord, LogStore};
use didban_store::MetastoreConfig;
use didban_testkit::garage::Garage;
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::HANG;

const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z
const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;

fn s3_options(dir: &Path, garage: &Garage, node: usize) -> LogOptions {
    let mut o = LogOptions::new(dir);
    o.block_storage = garage_storage(garage, node, 64 << 20);
    o.writer_memory_bytes = 16 << 20;
    o
}

/// Record `i` of the test day, `i` seconds after T0, with body `<word> number <i>`.
fn record(word: &str, i: i64) -> LogRecord {
    LogRecord {
        timestamp_unix_nano: T0 + i * 1_000_000_000,
        observed_unix_nano: T0 + i * 1_000_000_000,
        severity_number: 9,
        severity_text: "INFO".into(),
        service: "checkout".into(),
        body: format!("{word} number {i}"),
        attributes: Default::default(),
        resource: Default::default(),
        trace_id: String::new(),
        span_id: String::new(),
        scope_name: String::new(),
    }
}

fn query(word: &str, limit: usize) -> LogQuery {
    LogQuery {
        query: word.into(),
        trace_id: None,
        start_unix_nano: T0 - 1,
        end_unix_nano: T0 + DAY - 1,
        limit,
        cursor: None,
    }
}

/// Every record matching `word`, paging `page` at a time: their timestamps in order.
fn all_pages(store: &LogStore, word: &str, page: usize) -> Vec<i64> {
    let mut q = query(word, page);
    let mut out = Vec::new();
    loop {
        let got = store.search(&q).unwrap();
        out.extend(got.records.iter().map(|r| r.timestamp_unix_nano));
        match got.next_cursor {
            Some(c) => q.cursor = Some(didban_store::logs::Cursor::decode(&c).unwrap()),
            None => return out,
        }
    }
}

fn day_dirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "sealed")
        .collect();
    out.extend(
        std::fs::read_dir(dir.join("logs").join("sealed"))
            .unwrap()
            .map(|e| format!("sealed/{}", e.unwrap().file_name().to_string_lossy())),
    );
    out
}

async fn append_committed(store: &LogStore, records: Vec<LogRecord>) {
    store.append(records).await.unwrap();
    tokio::task::block_in_place(|| store.commit().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_day_is_searched_from_the_bucket_late_records_included() {
    let garage = Garage::start();
    let first = tempfile::tempdir().unwrap();
    let store = LogStore::open(s3_options(first.path(), &garage, 0)).unwrap();
    // Three commits: three segments, merged into one at sealing.
    for part in 0..3 {
        append_committed(
            &store,
            (part * 100..part * 100 + 100)
                .map(|i| record("hello", i))
                .collect(),
        )
        .await;
    }
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + HOUR));
    assert_eq!(store.stats().sealed_days, 0, "the day ended only an hour ago");
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
    let s = store.stats();
    assert_eq!((s.days, s.sealed_days), (0, 1), "{s:?}");
    assert!(day_dirs(first.path()).is_empty(), "{:?}", day_dirs(first.path()));
    assert_eq!(all_pages(&store, "hello", 1000).len(), 300);

    // A late record for the sealed day: a new index of the day, searched with the sealed one.
    append_committed(&store, vec![record("hello", 150), record("late", 400)]).await;
    assert_eq!(store.stats().days, 1);
    let pages = all_pages(&store, "hello", 7);
    assert_eq!(pages.len(), 301);
    assert!(
        pages.windows(2).all(|w| w[0] >= w[1]),
        "newest first across both indexes"
    );
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
    assert_eq!((store.stats().days, store.stats().sealed_days), (0, 2));
    store.close().await.unwrap();
    drop(store);

    // Another process's view: an empty data directory and cache, through another node.
    let second = tempfile::tempdir().unwrap();
    let fresh = LogStore::open(s3_options(second.path(), &garage, 1)).unwrap();
    assert_eq!(fresh.stats().sealed_days, 2);
    let pages = all_pages(&fresh, "hello", 7);
    let mut expected: Vec<i64> = (0..300).chain([150]).map(|i| T0 + i * 1_000_000_000).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        pages, expected,
        "every record once, newest first, over pages of 7"
    );
    assert_eq!(all_pages(&fresh, "late", 10), [T0 + 400 * 1_000_000_000]);
    let cache = fresh.stats().object_cache.unwrap();
    assert_eq!(cache.files, 2, "each sealed index fetched whole once: {cache:?}");
    assert!(cache.hits > 0, "later searches open the cached copies: {cache:?}");
    drop(fresh);

    // Retention deletes sealed days from the bucket.
    let mut o = s3_options(second.path(), &garage, 1);
    o.retention_days = 1;
    let expiring = LogStore::open(o).unwrap();
    tokio::task::block_in_place(|| expiring.maintain(T0 + 10 * DAY));
    assert_eq!(expiring.stats().sealed_days, 0);
    assert_eq!(expiring.stats().retention_deleted_days, 2);
    drop(expiring);
    let third = tempfile::tempdir().unwrap();
    let after = LogStore::open(s3_options(third.path(), &garage, 2)).unwrap();
    assert_eq!(after.stats().sealed_days, 0, "nothing left in the bucket");
    assert!(all_pages(&after, "hello", 10).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_sharing_the_metastore_searches_the_days_another_sealed() {
    let garage = Garage::start();
    let pg = Postgres::start();
    let shared = |dir: &Path, node: usize| {
        let mut o = s3_options(dir, &garage, node);
        let mut m = MetastoreConfig::new(pg.dsn("postgres"));
        m.compactor_lease_ttl = Duration::from_secs(3);
        o.metastore = Some(m);
        o
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = LogStore::open(shared(dir_a.path(), 0)).unwrap();
    let b = LogStore::open(shared(dir_b.path(), 1)).unwrap();
    append_committed(&a, (0..50).map(|i| record("from_a", i)).collect()).await;
    append_committed(&b, (0..20).map(|i| record("from_b", i)).collect()).await;
    tokio::task::block_in_place(|| a.maintain(T0 + DAY + 3 * HOUR));
    assert_eq!(a.stats().sealed_days, 1);
    assert!(
        all_pages(&b, "from_a", 100).is_empty(),
        "not listed before a refresh"
    );
    tokio::task::block_in_place(|| b.maintain(T0 + DAY + 3 * HOUR));
    assert_eq!(b.stats().sealed_days, 2, "a's and its own");
    tokio::task::block_in_place(|| a.maintain(T0 + DAY + 3 * HOUR));
    for s in [&a, &b] {
        assert_eq!(all_pages(s, "from_a", 100).len(), 50);
        assert_eq!(all_pages(s, "from_b", 100).len(), 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_sealed_while_the_bucket_is_down_is_searched_in_place_and_uploaded_later() {
    let mut garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(s3_options(dir.path(), &garage, 2)).unwrap();
    append_committed(&store, (0..40).map(|i| record("staged", i)).collect()).await;
    garage.stop_node(2);
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
    assert_eq!((store.stats().days, store.stats().sealed_days), (0, 1));
    let staged = day_dirs(dir.path());
    assert!(
        staged.len() == 1 && staged[0].starts_with("sealed/2025-11-26-"),
        "{staged:?}"
    );
    assert_eq!(all_pages(&store, "staged", 100).len(), 40, "searched in place");
    // Staged, the day is not in the bucket yet: an ingester still answers queriers for it.
    let everything = query("staged", 100);
    assert_eq!(store.search_unpublished(&everything).unwrap().records.len(), 40);
    drop(store);

    // The next process through a live node takes the staged day back and uploads it.
    let again = LogStore::open(s3_options(dir.path(), &garage, 0)).unwrap();
    assert_eq!(again.stats().sealed_days, 1);
    tokio::task::block_in_place(|| again.maintain(T0 + DAY + 3 * HOUR));
    assert!(day_dirs(dir.path()).is_empty(), "{:?}", day_dirs(dir.path()));
    // Uploaded, it is the bucket's: searched, but no longer among the unpublished days.
    assert_eq!(again.search(&everything).unwrap().records.len(), 40);
    assert!(again.search_unpublished(&everything).unwrap().records.is_empty());
    let histogram = again.histogram_unpublished(&everything, 3_600_000).unwrap();
    assert_eq!(histogram.iter().map(|b| b.count).sum::<u64>(), 0);
    drop(again);
    let look = tempfile::tempdir().unwrap();
    let fresh = LogStore::open(s3_options(look.path(), &garage, 1)).unwrap();
    assert_eq!(all_pages(&fresh, "staged", 100).len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_day_whose_row_was_refused_is_retried_under_a_new_name_and_the_first_collected() {
    let garage = Garage::start();
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = s3_options(dir.path(), &garage, 0);
    let mut m = MetastoreConfig::new(pg.dsn("postgres"));
    m.compactor_lease_ttl = Duration::from_secs(3);
    m.gc_grace = Duration::from_secs(2);
    o.metastore = Some(m.clone());
    let store = LogStore::open(o).unwrap();
    append_committed(&store, (0..40).map(|i| record("retried", i)).collect()).await;

    // PostgreSQL refuses the row: the day is uploaded but stays staged.
    pg.psql(
        "postgres",
        "ALTER TABLE didban_blocks ADD CONSTRAINT no_logs CHECK (signal <> 'logs')",
    );
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
    let first = day_dirs(dir.path());
    assert!(first.len() == 1 && first[0].starts_with("sealed/"), "{first:?}");
    assert_eq!(all_pages(&store, "retried", 100).len(), 40, "searched in place");

    // Accepted again: uploaded and recorded under a new name; the first upload's objects
    // have no row and the garbage collection deletes them after the grace period.
    pg.psql("postgres", "ALTER TABLE didban_blocks DROP CONSTRAINT no_logs");
    tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
    assert!(day_dirs(dir.path()).is_empty(), "{:?}", day_dirs(dir.path()));
    let rows = pg.psql("postgres", "SELECT name FROM didban_blocks WHERE signal = 'logs'");
    assert_eq!(rows.lines().count(), 1, "{rows}");
    assert_ne!(format!("sealed/{rows}"), first[0], "a new name");
    didban_testkit::wait::until("the first upload's objects to be collected", HANG, || {
        tokio::task::block_in_place(|| store.maintain(T0 + DAY + 3 * HOUR));
        match store.stats().gc_deleted_days {
            0 => Err("not yet".to_string()),
            n => Ok(n),
        }
    });

    let look = tempfile::tempdir().unwrap();
    let mut o = s3_options(look.path(), &garage, 1);
    o.metastore = Some(m);
    let other = LogStore::open(o).unwrap();
    assert_eq!(other.stats().sealed_days, 1);
    assert_eq!(all_pages(&other, "retried", 100).len(), 40, "every record once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_days_tell_a_store_on_a_new_disk_what_they_hold_of_the_ingest_log() {
    use didban_store::LogPosition;
    let garage = Garage::start();
    let first = tempfile::tempdir().unwrap();
    let at = |seq| Some(LogPosition { partition: 0, seq });
    let on_day = |day: i64, i: i64| {
        let mut r = record("ingested", i);
        r.timestamp_unix_nano += day * DAY;
        r
    };
    {
        let store = LogStore::open(s3_options(first.path(), &garage, 0)).unwrap();
        // Messages 10..=12 hold records of day 0, 13..=15 of day 1, 16..=20 of both.
        let batches = [
            (vec![on_day(0, 0), on_day(0, 1)], 10, 12),
            (vec![on_day(1, 0)], 13, 15),
            (vec![on_day(0, 2), on_day(1, 1)], 16, 20),
        ];
        for (records, from, to) in batches {
            store.append_from(records, at(to), Some(from)).await.unwrap();
        }
        tokio::task::block_in_place(|| store.commit().unwrap());
        // Not committed: day 2's first message is known again from the WAL at reopen.
        store
            .append_from(vec![on_day(2, 0)], at(22), Some(21))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let store = LogStore::open(s3_options(first.path(), &garage, 0)).unwrap();
    // Days 0 and 1 are sealed, day 2 is still written to.
    tokio::task::block_in_place(|| store.maintain(T0 + 2 * DAY + 3 * HOUR));
    assert_eq!((store.stats().days, store.stats().sealed_days), (1, 2));
    store.close().await.unwrap();
    drop(store);

    let second = tempfile::tempdir().unwrap();
    let fresh = LogStore::open(s3_options(second.path(), &garage, 1)).unwrap();
    let published = tokio::task::block_in_place(|| fresh.published_positions(0)).unwrap();
    // Each sealed day holds its records of every message up to 22 (all that was applied
    // at the seal); below 13 every record is in the bucket (day 0's seal still counted
    // day 1 — staged beside it — as not uploaded, with records from 13 on).
    assert_eq!(published.days.get("2025-11-26"), Some(&22));
    assert_eq!(published.days.get("2025-11-27"), Some(&22));
    assert_eq!(published.below, 12);
    assert!(!published.holds("2025-11-28", 21), "day 2 is not in the bucket");
    assert!(published.holds("2025-11-27", 16));
    assert_eq!(
        tokio::task::block_in_place(|| fresh.published_positions(1)).unwrap(),
        Default::default(),
        "nothing of another partition"
    );
}
