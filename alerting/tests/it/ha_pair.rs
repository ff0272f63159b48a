//! The HA pair's shared state against a private PostgreSQL: silences and notification-log
//! entries move only forward (an older copy never overwrites a newer one), clusters do not
//! see each other's rows, and an instance that cannot reach the database sends on its own
//! once the lease TTL has passed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use didban_alerting::ha::{HaConfig, HaPair};
use didban_alerting::notify::log::LogEntry;
use didban_alerting::notify::silence::{Silence, SilenceMatcher};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until_async, HANG};

fn config(url: String, cluster: &str, ttl: Duration) -> HaConfig {
    HaConfig {
        url,
        ca_file: None,
        connect_timeout: Duration::from_secs(2),
        cluster: cluster.to_string(),
        lease_ttl: ttl,
        sync_interval: Duration::from_secs(1),
    }
}

fn silence(id: &str, updated_at_ms: i64, comment: &str) -> Silence {
    Silence {
        id: id.to_string(),
        matchers: vec![SilenceMatcher {
            name: "job".into(),
            value: "db".into(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at_ms: 0,
        ends_at_ms: i64::MAX / 2,
        updated_at_ms,
        created_by: "ana".into(),
        comment: comment.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_rows_move_only_forward_and_stay_in_their_cluster() {
    let pg = Postgres::start();
    let a = HaPair::start(config(pg.dsn("postgres"), "eu", Duration::from_secs(30))).unwrap();
    let b = HaPair::start(config(pg.dsn("postgres"), "eu", Duration::from_secs(30))).unwrap();
    let other = HaPair::start(config(pg.dsn("postgres"), "us", Duration::from_secs(30))).unwrap();

    // Silences: a's new one reaches b; b's later edit wins over a's stale copy.
    let shared = a.exchange_silences(&[silence("s1", 100, "first")]).await.unwrap();
    assert_eq!(shared, vec![silence("s1", 100, "first")]);
    assert_eq!(b.exchange_silences(&[]).await.unwrap(), shared);
    b.exchange_silences(&[silence("s1", 200, "edited")])
        .await
        .unwrap();
    let seen_by_a = a.exchange_silences(&[silence("s1", 100, "first")]).await.unwrap();
    assert_eq!(seen_by_a, vec![silence("s1", 200, "edited")]);
    assert!(
        other.exchange_silences(&[]).await.unwrap().is_empty(),
        "another cluster"
    );

    // Log entries: the newest delivery of a key stays.
    let entry = |at_ms, firing: Vec<u64>| LogEntry {
        firing,
        resolved: Vec::new(),
        at_ms,
    };
    a.put_log("ops/webhook[0]:g", &entry(10, vec![u64::MAX, 7]))
        .await
        .unwrap();
    b.put_log("ops/webhook[0]:g", &entry(5, vec![1])).await.unwrap();
    let log = b.load_log().await.unwrap();
    assert_eq!(
        log,
        vec![("ops/webhook[0]:g".to_string(), entry(10, vec![u64::MAX, 7]))]
    );
    assert!(other.load_log().await.unwrap().is_empty());

    // Forgetting drops entries older than the log's retention (5 days), not newer ones.
    let now = didban_alerting::now_ms();
    a.put_log("old", &entry(now - 6 * 86_400_000, vec![1]))
        .await
        .unwrap();
    a.put_log("recent", &entry(now - 86_400_000, vec![1]))
        .await
        .unwrap();
    a.forget(now).await.unwrap();
    let keys: Vec<String> = a.load_log().await.unwrap().into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.contains(&"recent".to_string()) && !keys.contains(&"old".to_string()),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_instance_holds_the_sender_lease() {
    let pg = Postgres::start();
    let a = HaPair::start(config(pg.dsn("postgres"), "eu", Duration::from_secs(30))).unwrap();
    let b = HaPair::start(config(pg.dsn("postgres"), "eu", Duration::from_secs(30))).unwrap();
    until_async("a sender", HANG, || async {
        (a.is_sender() || b.is_sender())
            .then_some(())
            .ok_or("none".to_string())
    })
    .await;
    assert!(a.is_sender() != b.is_sender(), "exactly one sends");
    assert!(!a.is_degraded() && !b.is_degraded());
    // A clean stop hands over without waiting for the TTL (30 s here).
    let (sender, other) = if a.is_sender() { (a, b) } else { (b, a) };
    sender.release().await;
    assert!(!sender.may_send(), "released: sends nothing more");
    until_async("the other instance taking over", HANG, || async {
        other.is_sender().then_some(()).ok_or("not yet".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_database_an_instance_sends_alone_after_the_ttl() {
    let closed = didban_testkit::ports::free_port();
    let url = format!("host=127.0.0.1 port={closed} user=postgres dbname=postgres");
    // With a long TTL nobody is sure yet that the database is gone: no sending.
    let patient = HaPair::start(config(url.clone(), "eu", Duration::from_secs(600))).unwrap();
    assert!(!patient.may_send());
    // Past the TTL without an answer: degraded, sends on its own.
    let alone = HaPair::start(config(url, "eu", Duration::from_secs(1))).unwrap();
    until_async("degraded mode", HANG, || async {
        alone.may_send().then_some(()).ok_or("still waiting".to_string())
    })
    .await;
    assert!(alone.is_degraded() && !alone.is_sender());
    assert!(alone.load_log().await.is_err(), "the database is really down");
}
