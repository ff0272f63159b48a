//! The PostgreSQL metastore with blocks in a shared bucket, against a real three-node
//! Garage cluster and a private PostgreSQL: two databases (two processes' worth) publish
//! blocks, each lists the other's after a refresh, only the holder of the compactor lease
//! compacts, a holder dropped without releasing (a killed process) is replaced after the
//! TTL and not before, a released lease is taken at once, and after compaction both read
//! the same samples — nothing lost, nothing twice. Retired blocks and uploads without a
//! row are collected from the bucket after the grace period. With PostgreSQL down, heads
//! stay frozen (queryable) and nobody compacts.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use didban_store::{BlockStorage, Db, DbOptions, MetastoreConfig, S3Config, SeriesSamples};
use didban_testkit::garage::{Garage, REGION};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::until;

const TTL: Duration = Duration::from_secs(3);
const GRACE: Duration = Duration::from_secs(2);

/// Blocks in `garage`'s bucket through node `node`, without a metastore.
fn s3_options(dir: &Path, garage: &Garage, node: usize) -> DbOptions {
    let mut o = options(dir);
    o.block_storage = garage_storage(garage, node, 64 << 20);
    o
}

/// The metastore on `pg` with a short lease TTL and grace period.
fn metastore(pg: &Postgres) -> MetastoreConfig {
    let mut m = MetastoreConfig::new(pg.dsn("postgres"));
    m.compactor_lease_ttl = TTL;
    m.gc_grace = GRACE;
    m
}

/// Blocks in `garage` through node `node`, listed in the metastore on `pg`. No
/// downsampling: the test data is from 2023, so the compactor would otherwise add (and
/// retention then retire) 5-minute and 1-hour copies beside the blocks these tests count.
fn shared_options(dir: &Path, garage: &Garage, node: usize, pg: &Postgres) -> DbOptions {
    let mut o = s3_options(dir, garage, node);
    o.metastore = Some(metastore(pg));
    o.downsample_5m_after = Duration::ZERO;
    o.downsample_1h_after = Duration::ZERO;
    o
}

/// One writer's block: 20 series of writer `who` with 30 samples each, over 5 minutes
/// from `T0 + start_min` minutes (writers' blocks overlap in time when their starts do).
fn block_data(who: &str, start_min: i64) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for i in 0..20 {
        let mut points = Vec::new();
        for k in 0..30 {
            points.push((
                T0 + start_min * MIN + k * 10_000,
                (start_min * 1000 + i * 10 + k) as f64,
            ));
        }
        out.push(series(
            &format!("shared_metric_{}", i % 4),
            &format!("{who}-{i}"),
            &points,
        ));
    }
    out
}

/// Appends one block's data and writes it as a block at once.
async fn write_block(db: &Db, who: &str, start_min: i64) {
    db.append(block_data(who, start_min)).await.unwrap();
    db.flush_head().unwrap();
}

/// `pg`'s count for `sql`.
fn psql_count(pg: &Postgres, sql: &str) -> u64 {
    pg.psql("postgres", sql).parse().unwrap()
}

fn now() -> i64 {
    didban_base::now_ms()
}

#[tokio::test]
async fn writers_see_each_others_blocks_and_only_the_lease_holder_compacts() {
    let pg = Postgres::start();
    let garage = Garage::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Db::open(shared_options(dir_a.path(), &garage, 0, &pg)).unwrap();
    until("the first database to take the compactor lease", TTL * 3, || {
        a.stats().compactor.then_some(()).ok_or("not yet".to_string())
    });
    let b = Db::open(shared_options(dir_b.path(), &garage, 1, &pg)).unwrap();

    // Each writes a block over the same five minutes (different series): the blocks
    // overlap, so the compactor merges them.
    write_block(&a, "a", 0).await;
    write_block(&b, "b", 0).await;
    let (from_a, from_b) = (everything(&a), everything(&b));
    assert_eq!((count(&from_a), count(&from_b)), (600, 600));
    assert_eq!(
        (a.stats().blocks, b.stats().blocks),
        (1, 1),
        "each sees its own block only"
    );
    assert_eq!(
        psql_count(&pg, "SELECT count(*) FROM didban_blocks WHERE deleted_at IS NULL"),
        2,
        "both blocks are published"
    );

    // b refreshes: it lists a's block, and does not compact (a holds the lease).
    b.maintain(now()).unwrap();
    assert!(!b.stats().compactor);
    assert_eq!((b.stats().blocks, b.stats().compactions), (2, 0));
    let both = everything(&b);
    assert_eq!(count(&both), 1200);

    // a refreshes and compacts the two into one.
    a.maintain(now()).unwrap();
    assert_eq!((a.stats().blocks, a.stats().compactions), (1, 1));
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL) || '/' || count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM didban_blocks"
        ),
        "1/2",
        "the merged block is in and its two sources retired"
    );
    assert_same(&both, &everything(&a));
    b.maintain(now()).unwrap();
    assert_eq!(
        b.stats().blocks,
        1,
        "b reads the merged block in place of the sources"
    );
    assert_same(&both, &everything(&b));

    // A block written by a process without the metastore has no row: an abandoned
    // upload for the compactor, deleted once older than the grace period.
    let stray_dir = tempfile::tempdir().unwrap();
    let stray = Db::open(s3_options(stray_dir.path(), &garage, 2)).unwrap();
    write_block(&stray, "stray", 60).await;
    drop(stray);
    let in_bucket = |dir: &Path| {
        let db = Db::open(s3_options(dir, &garage, 2)).unwrap();
        db.stats().blocks
    };
    let lister = tempfile::tempdir().unwrap();
    assert_eq!(
        in_bucket(lister.path()),
        4,
        "merged block, two retired sources and the stray"
    );

    // After the grace period the compactor deletes the sources' objects, then their
    // rows, and the stray block's objects; the merged block stays.
    until(
        "the compactor's garbage collection",
        Duration::from_secs(30),
        || {
            a.maintain(now()).map_err(|e| e.to_string())?;
            match a.stats().gc_deleted_blocks {
                3 => Ok(()),
                n => Err(format!("{n} blocks collected")),
            }
        },
    );
    assert_eq!(psql_count(&pg, "SELECT count(*) FROM didban_blocks"), 1);
    let lister = tempfile::tempdir().unwrap();
    assert_eq!(
        in_bucket(lister.path()),
        1,
        "only the merged block is left in the bucket"
    );
    b.maintain(now()).unwrap();
    assert_same(&both, &everything(&b));
    assert_eq!(b.stats().gc_deleted_blocks, 0, "only the lease holder collects");
}

#[tokio::test]
async fn a_killed_compactor_is_replaced_after_the_ttl_and_a_closed_one_at_once() {
    let pg = Postgres::start();
    let garage = Garage::start();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Db::open(shared_options(dirs[0].path(), &garage, 0, &pg)).unwrap();
    until("the first database to take the compactor lease", TTL * 3, || {
        a.stats().compactor.then_some(()).ok_or("not yet".to_string())
    });
    let b = Db::open(shared_options(dirs[1].path(), &garage, 1, &pg)).unwrap();
    write_block(&a, "a", 0).await;
    // b writes two overlapping blocks of its own, for whoever compacts.
    write_block(&b, "b", 0).await;
    write_block(&b, "c", 2).await;
    b.maintain(now()).unwrap();
    assert_eq!((b.stats().blocks, b.stats().compactions), (3, 0));
    let written = everything(&b);
    assert_eq!(count(&written), 1800);

    // a "is killed": dropped without close, so its lease is not released.
    let killed_at = Instant::now();
    drop(a);
    until("b to take over the compactor lease", TTL * 4, || {
        b.stats().compactor.then_some(()).ok_or("not yet".to_string())
    });
    let took = killed_at.elapsed();
    assert!(
        took >= TTL / 2,
        "taken over {took:?} after the kill, before the lease could expire"
    );
    b.maintain(now()).unwrap();
    assert_eq!(
        (b.stats().blocks, b.stats().compactions),
        (1, 1),
        "the new compactor merges all three"
    );
    assert_same(&written, &everything(&b));

    // A third process reads the same samples from the metastore and the bucket alone.
    let c = Db::open(shared_options(dirs[2].path(), &garage, 2, &pg)).unwrap();
    assert_same(&written, &everything(&c));
    assert!(!c.stats().compactor);

    // A closed compactor releases the lease: c takes it well within the TTL.
    let closed_at = Instant::now();
    b.close().await.unwrap();
    until("c to take the released lease", TTL, || {
        c.stats().compactor.then_some(()).ok_or("not yet".to_string())
    });
    assert!(closed_at.elapsed() < TTL, "took {:?}", closed_at.elapsed());
}

#[tokio::test]
async fn open_refuses_a_metastore_without_a_bucket_and_names_an_unreachable_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.metastore = Some(MetastoreConfig::new("host=127.0.0.1 port=1 user=x dbname=x"));
    let Err(err) = Db::open(o) else {
        panic!("open succeeded")
    };
    let err = err.to_string();
    assert!(err.contains("object_store"), "{err}");

    // The bucket client makes no request at open; the metastore is asked first and its
    // failure names the server (without the password).
    let port = didban_testkit::ports::free_port();
    let mut o = options(dir.path());
    o.block_storage = BlockStorage::S3(S3Config {
        endpoint: "http://127.0.0.1:1".to_string(),
        bucket: "b".to_string(),
        region: REGION.to_string(),
        access_key_id: "k".to_string(),
        secret_access_key: "s".to_string(),
        allow_http: true,
        cache_bytes: 1 << 20,
    });
    o.metastore = Some(MetastoreConfig::new(format!(
        "postgres://didban:s3cret@127.0.0.1:{port}/didban"
    )));
    let Err(err) = Db::open(o) else {
        panic!("open succeeded")
    };
    let err = err.to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("metastore"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
async fn postgres_down_keeps_blocks_in_the_head_and_stops_compaction() {
    let pg = Postgres::start();
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(shared_options(dir.path(), &garage, 0, &pg)).unwrap();
    until("the database to take the compactor lease", TTL * 3, || {
        db.stats().compactor.then_some(()).ok_or("not yet".to_string())
    });
    write_block(&db, "a", 0).await;
    drop(pg);

    // Ingest goes on; the block cannot be published, so its head stays frozen in memory
    // (and in the WAL) and queries still answer every sample.
    db.append(block_data("b", 10)).await.unwrap();
    let err = db.flush_head().unwrap_err().to_string();
    assert!(err.contains("metastore"), "{err}");
    let stats = db.stats();
    assert_eq!((stats.blocks, stats.frozen_heads), (1, 1));
    assert_eq!(count(&everything(&db)), 1200);
    // Without renewals the process stops believing it is the compactor within the TTL.
    until("the compactor lease to be given up", TTL * 2, || {
        (!db.stats().compactor)
            .then_some(())
            .ok_or("still compactor".to_string())
    });
    assert!(db.maintain(now()).is_err());
    assert_eq!(db.stats().compactions, 0);
}
