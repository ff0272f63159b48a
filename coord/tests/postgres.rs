//! coord against a private PostgreSQL cluster (testkit::postgres): connections and their
//! errors, migrations applied once by racing processes, and leases — two holders, expiry,
//! takeover, release, fencing — on the database clock.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use didban_coord::{
    connect, migrate, prepare, redact, ConnectOptions, CoordError, Lease, LeaseHolder, Migration,
};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::until_async;

async fn client(pg: &Postgres) -> didban_coord::Client {
    let mut c = connect(&pg.dsn("postgres"), &ConnectOptions::default())
        .await
        .unwrap();
    prepare(&mut c).await.unwrap();
    c
}

const STEPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "things",
        sql: "CREATE TABLE things (id integer PRIMARY KEY)",
    },
    Migration {
        version: 2,
        name: "things.label",
        sql: "ALTER TABLE things ADD COLUMN label text NOT NULL DEFAULT ''",
    },
];

#[tokio::test]
async fn migrations_run_once_even_when_processes_start_together() {
    let pg = Postgres::start();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(
            connect(&pg.dsn("postgres"), &ConnectOptions::default())
                .await
                .unwrap(),
        );
    }
    // Four "processes" migrating at once: each must come back at version 2 without an
    // error (CREATE TABLE twice would fail without the advisory lock).
    let mut tasks = Vec::new();
    for mut c in clients {
        tasks.push(tokio::spawn(async move { migrate(&mut c, "test", STEPS).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 2);
    }
    assert_eq!(
        pg.psql("postgres", "SELECT string_agg(version::text, ',' ORDER BY version) FROM didban_schema WHERE component = 'test'"),
        "1,2"
    );
    pg.psql("postgres", "INSERT INTO things (id, label) VALUES (1, 'x')");

    // A binary that knows only step 1 refuses a database at step 2.
    let mut c = connect(&pg.dsn("postgres"), &ConnectOptions::default())
        .await
        .unwrap();
    let err = migrate(&mut c, "test", &STEPS[..1]).await.unwrap_err();
    assert!(
        matches!(
            err,
            CoordError::SchemaTooNew {
                found: 2,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    // Steps out of order are refused before anything runs.
    let err = migrate(&mut c, "other", &STEPS[1..]).await.unwrap_err();
    assert!(err.to_string().contains("found 2 after 0"), "{err}");
    // A failing step rolls the whole migration back and names the step.
    let bad = [Migration {
        version: 1,
        name: "broken",
        sql: "CREATE TABLE t1 (a integer); CREATE TABLE nope (",
    }];
    let err = migrate(&mut c, "bad", &bad).await.unwrap_err();
    assert!(err.to_string().contains("step 1 (broken)"), "{err}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE tablename = 't1'"
        ),
        "0"
    );
}

#[tokio::test]
async fn connection_errors_name_the_server_without_its_password() {
    assert_eq!(
        redact("postgres://didban:s3cret@db.example:5432/didban?sslmode=require"),
        "postgres://didban:***@db.example:5432/didban?sslmode=require"
    );
    assert_eq!(
        redact("host=h password=s3cret dbname=d"),
        "host=h password=*** dbname=d"
    );

    let err = connect(
        "postgres://u:pw@127.0.0.1:5432/x?bogus=1",
        &ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CoordError::Url { .. }), "{err}");
    assert!(
        err.to_string().contains("bogus") && !err.to_string().contains("pw@"),
        "{err}"
    );

    // Nothing listens on a port just reserved and released.
    let port = didban_testkit::ports::free_port();
    let url = format!("postgres://u:pw@127.0.0.1:{port}/x");
    let err = connect(&url, &ConnectOptions::default()).await.unwrap_err();
    assert!(matches!(err, CoordError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");

    let options = ConnectOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ConnectOptions::default()
    };
    let err = connect(&url, &options).await.unwrap_err();
    assert!(err.to_string().contains("sslmode=require"), "{err}");
    let err = connect(&format!("{url}?sslmode=require"), &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn verified_tls_with_sslmode_require() {
    let certs = didban_testkit::certs::make_certs();
    let pg = Postgres::start_tls(&certs);
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=require",
        pg.port
    );
    // The test CA is not a system CA: the server is not trusted without the CA file.
    let err = connect(&url, &ConnectOptions::default()).await.unwrap_err();
    assert!(matches!(err, CoordError::Connect { .. }), "{err}");
    let options = ConnectOptions {
        ca_file: Some(certs.ca.clone()),
        ..ConnectOptions::default()
    };
    let c = connect(&url, &options).await.unwrap();
    let row = c
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the connection is encrypted");
}

#[tokio::test]
async fn one_holder_at_a_time_expiry_takeover_release_and_fencing() {
    let pg = Postgres::start();
    let (a_client, b_client) = (client(&pg).await, client(&pg).await);
    let ttl = Duration::from_millis(1500);
    let a = Lease::new("compactor", "a", ttl);
    let b = Lease::new("compactor", "b", ttl);

    assert!(a.try_acquire(&a_client).await.unwrap(), "a free lease is taken");
    assert!(!b.try_acquire(&b_client).await.unwrap(), "a held lease is not");
    assert!(a.try_acquire(&a_client).await.unwrap(), "taking again extends it");
    assert!(a.renew(&a_client).await.unwrap());
    assert!(!b.renew(&b_client).await.unwrap(), "only the holder renews");
    let row = Lease::read(&a_client, "compactor").await.unwrap().unwrap();
    assert_eq!((row.holder.as_str(), row.live), ("a", true));

    // Fencing: while a's transaction has checked the lease, b cannot take it even after
    // it expires; once that transaction ends, b can.
    let mut a_client = a_client;
    let tx = a_client.transaction().await.unwrap();
    a.check_held(&tx).await.unwrap();
    let err = b.check_held(&b_client).await.unwrap_err();
    assert!(matches!(err, CoordError::LeaseNotHeld { .. }), "{err}");

    // While a's fenced transaction is open, b does not get the lease — not even once
    // the TTL has passed (its attempt waits on the row a's transaction locked).
    let b_keeps_trying = async {
        loop {
            if b.try_acquire(&b_client).await.unwrap() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let blocked = tokio::time::timeout(ttl * 2, b_keeps_trying).await;
    assert!(blocked.is_err(), "b took the lease during a's fenced transaction");
    tx.commit().await.unwrap();
    // Expiry by the database clock: a did not renew, so b takes it now.
    until_async("b to take the expired lease", Duration::from_secs(10), || async {
        if b.try_acquire(&b_client).await.unwrap() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    assert!(!a.renew(&a_client).await.unwrap(), "a lost it");
    let err = a.check_held(&a_client).await.unwrap_err();
    assert!(matches!(err, CoordError::LeaseNotHeld { .. }), "{err}");

    // Release hands it over at once.
    assert!(!a.release(&a_client).await.unwrap(), "a has nothing to release");
    assert!(b.release(&b_client).await.unwrap());
    assert!(
        a.try_acquire(&a_client).await.unwrap(),
        "a released lease is free at once"
    );
}

#[tokio::test]
async fn background_holders_take_over_from_a_crashed_or_released_holder() {
    let pg = Postgres::start();
    drop(client(&pg).await); // creates the lease table
    let url = pg.dsn("postgres");
    let ttl = Duration::from_millis(1200);
    let runtime = tokio::runtime::Handle::current();
    let start = |holder: &str| {
        LeaseHolder::start(
            url.clone(),
            ConnectOptions::default(),
            Lease::new("compactor", holder, ttl),
            &runtime,
        )
    };
    let first = start("first");
    let mut first_changes = first.watch();
    first_changes.wait_for(|held| *held).await.unwrap();
    assert!(first.is_held());
    let second = start("second");
    // Several renewal periods pass: the second never gets it while the first renews.
    let mut second_changes = second.watch();
    let timed_out = tokio::time::timeout(ttl * 3, second_changes.wait_for(|held| *held))
        .await
        .is_err();
    assert!(
        timed_out,
        "the second holder took a lease the first keeps renewing"
    );
    assert!(first.is_held() && !second.is_held());

    // A crash: the first stops renewing without releasing. The second takes over once
    // the TTL has passed by the database's clock — and not before.
    let crashed_at = std::time::Instant::now();
    drop(first);
    second_changes.wait_for(|held| *held).await.unwrap();
    assert!(
        crashed_at.elapsed() >= ttl / 2,
        "taken over {:?} after the crash, before the lease could expire",
        crashed_at.elapsed()
    );
    assert!(second.is_held());

    // A release: the third takes over within one retry period, far sooner than the TTL
    // would allow.
    let third = start("third");
    let mut third_changes = third.watch();
    let released_at = std::time::Instant::now();
    second.release().await;
    third_changes.wait_for(|held| *held).await.unwrap();
    assert!(released_at.elapsed() < ttl, "took {:?}", released_at.elapsed());
    let row = {
        let c = client(&pg).await;
        Lease::read(&c, "compactor").await.unwrap().unwrap()
    };
    assert_eq!(row.holder, "third");

    // The database stops: the holder stops believing it holds the lease within the TTL.
    drop(pg);
    tokio::time::timeout(ttl * 2, third_changes.wait_for(|held| !*held))
        .await
        .expect("the holder gives the lease up when it cannot renew")
        .unwrap();
    assert!(!third.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_while_announced_and_drop_out_after_a_crash_or_a_clean_leave() {
    let pg = Postgres::start();
    let c = client(&pg).await;
    let member = |id: &str, role: &str, ttl_ms: u64| didban_coord::Member {
        cluster: "prod".into(),
        role: role.into(),
        id: id.into(),
        address: format!("http://{id}:9090"),
        ttl: Duration::from_millis(ttl_ms),
    };
    // One-shot announcements: listed by cluster and role, in id order, until the TTL.
    member("i2", "ingester", 60_000).announce(&c).await.unwrap();
    member("i1", "ingester", 1_000).announce(&c).await.unwrap();
    member("q1", "querier", 60_000).announce(&c).await.unwrap();
    let mut other = member("i9", "ingester", 60_000);
    other.cluster = "staging".into();
    other.announce(&c).await.unwrap();
    let ids = |rows: Vec<didban_coord::MemberRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let live = didban_coord::live_members(&c, "prod", "ingester").await.unwrap();
    assert_eq!(live[0].address, "http://i1:9090");
    assert_eq!(ids(live), vec!["i1", "i2"]);
    until_async(
        "i1's announcement to expire",
        std::time::Duration::from_secs(60),
        || async {
            let live = ids(didban_coord::live_members(&c, "prod", "ingester").await.unwrap());
            (live == vec!["i2"]).then_some(()).ok_or(format!("{live:?}"))
        },
    )
    .await;

    // A background announcer: listed while it runs, gone at once after a clean leave, and
    // after its TTL when dropped (a crash).
    let runtime = tokio::runtime::Handle::current();
    let url = pg.dsn("postgres");
    let clean = didban_coord::Announcer::start(
        url.clone(),
        ConnectOptions::default(),
        member("a1", "querier", 60_000),
        &runtime,
    );
    let crashed = didban_coord::Announcer::start(
        url,
        ConnectOptions::default(),
        member("a2", "querier", 1_500),
        &runtime,
    );
    until_async(
        "both announcers listed",
        std::time::Duration::from_secs(60),
        || async {
            let live = ids(didban_coord::live_members(&c, "prod", "querier").await.unwrap());
            (live == vec!["a1", "a2", "q1"])
                .then_some(())
                .ok_or(format!("{live:?}"))
        },
    )
    .await;
    clean.leave().await;
    let live = ids(didban_coord::live_members(&c, "prod", "querier").await.unwrap());
    assert!(!live.contains(&"a1".to_string()), "left cleanly: {live:?}");
    drop(crashed);
    until_async(
        "the crashed announcer to expire",
        std::time::Duration::from_secs(60),
        || async {
            let live = ids(didban_coord::live_members(&c, "prod", "querier").await.unwrap());
            (live == vec!["q1"]).then_some(()).ok_or(format!("{live:?}"))
        },
    )
    .await;
}
