//! The metastore's statements against a private PostgreSQL: publication, listing per
//! tenant, the fenced replacement (only the lease holder, all sources live or nothing),
//! and the rows garbage collection sees.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};

use super::{BlockRow, Metastore, MetastoreConfig};
use crate::storage::error::BlockError;

fn row(name: &str, min: i64) -> BlockRow {
    BlockRow {
        name: name.to_string(),
        min_time_ms: min,
        max_time_ms: min + 1000,
        level: 1,
        series: 2,
        samples: 20,
        histogram_samples: 0,
        bytes: 300,
        files: HashMap::from([
            ("meta.json".to_string(), 100),
            ("samples.parquet".to_string(), 200),
        ]),
    }
}

fn config(pg: &Postgres, tenant: &str) -> MetastoreConfig {
    let mut c = MetastoreConfig::new(pg.dsn("postgres"));
    c.tenant = tenant.to_string();
    c.compactor_lease_ttl = Duration::from_secs(2);
    c
}

fn names(rows: &[BlockRow]) -> Vec<&str> {
    rows.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn rows_are_published_listed_and_retired_only_under_the_lease() {
    let pg = Postgres::start();
    let first = Metastore::open(&config(&pg, "default"), "metrics").unwrap();
    until("the first metastore to hold the compactor lease", HANG, || {
        first.is_compactor().then_some(()).ok_or("not yet".to_string())
    });
    let second = Metastore::open(&config(&pg, "default"), "metrics").unwrap();
    let other_tenant = Metastore::open(&config(&pg, "team-b"), "metrics").unwrap();

    first.publish(row("b1", 0)).unwrap();
    second.publish(row("b2", 500)).unwrap();
    other_tenant.publish(row("b1", 0)).unwrap();
    let listed = second.list().unwrap();
    assert_eq!(
        names(&listed),
        ["b1", "b2"],
        "each sees the tenant's blocks, sorted by time"
    );
    assert_eq!(listed[0], row("b1", 0), "a row comes back as published");
    assert_eq!(names(&other_tenant.list().unwrap()), ["b1"]);
    let err = first.publish(row("b1", 0)).unwrap_err();
    assert!(err.to_string().contains("publish block b1"), "{err}");

    // Only the lease holder replaces.
    let err = second
        .replace(Some(row("m", 0)), vec!["b1".into(), "b2".into()])
        .unwrap_err();
    assert!(
        matches!(
            &err,
            BlockError::Metastore(didban_coord::CoordError::LeaseNotHeld { .. })
        ),
        "{err}"
    );
    // A source that is not live makes the whole transaction change nothing.
    let err = first
        .replace(Some(row("m", 0)), vec!["b1".into(), "gone".into()])
        .unwrap_err();
    assert!(err.to_string().contains("no longer live"), "{err}");
    assert_eq!(names(&first.list().unwrap()), ["b1", "b2"]);
    first
        .replace(Some(row("m", 0)), vec!["b1".into(), "b2".into()])
        .unwrap();
    assert_eq!(names(&second.list().unwrap()), ["m"]);
    assert_eq!(
        names(&other_tenant.list().unwrap()),
        ["b1"],
        "other tenants are untouched"
    );

    // Garbage collection sees every name of the signal (all tenants), and this tenant's
    // retired blocks once the grace period has passed.
    let (all, expired) = first.rows_for_gc(Duration::from_secs(3600)).unwrap();
    assert_eq!(all.len(), 4);
    assert!(expired.is_empty(), "{expired:?}");
    let (_, expired) = first.rows_for_gc(Duration::ZERO).unwrap();
    let mut expired = expired;
    expired.sort();
    assert_eq!(expired, ["b1", "b2"]);
    let err = second.forget(expired.clone()).unwrap_err();
    assert!(matches!(&err, BlockError::Metastore(_)), "{err}");
    first.forget(expired).unwrap();
    let (all, _) = first.rows_for_gc(Duration::ZERO).unwrap();
    assert_eq!(all.len(), 2, "m and team-b's b1 remain: {all:?}");
}
