//! The PgBouncer collector against a real pgbouncer in front of a test PostgreSQL: a held
//! transaction on a pool of one makes the next client wait (seen, then gone), totals and
//! the averages derived from them equal what `SHOW STATS` says, and an unreachable console
//! gives `pgbouncer_up` 0.

use std::time::Duration;

use didban_agent::collectors::pgbouncer::PgbouncerCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::PgbouncerConfig;
use didban_agent::model::{MetricKind, Sample};
use didban_testkit::free_port;
use didban_testkit::pgbouncer::Pgbouncer;
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::HANG;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn config(dsn: String) -> PgbouncerConfig {
    PgbouncerConfig {
        dsn,
        interval: None,
        timeout: Duration::from_secs(10),
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels)
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
        .value
}

async fn client(dsn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The `app` row of `SHOW STATS` as PgBouncer prints it: column → number.
async fn show_stats_app(admin: &tokio_postgres::Client) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for m in admin.simple_query("SHOW STATS").await.unwrap() {
        if let SimpleQueryMessage::Row(row) = m {
            if row.get("database") != Some("app") {
                continue;
            }
            for (i, c) in row.columns().iter().enumerate() {
                if let Some(v) = row.get(i).and_then(|v| v.parse::<f64>().ok()) {
                    out.push((c.name().to_string(), v));
                }
            }
        }
    }
    out
}

/// Collects until `ready` accepts the samples (PgBouncer sees a client's state change when
/// its packets arrive), failing after [`HANG`] with the last state.
async fn collect_until(
    c: &mut PgbouncerCollector,
    what: &str,
    ready: impl Fn(&[Sample]) -> Result<(), String>,
) -> Vec<Sample> {
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let s = c.collect().await.unwrap();
        match ready(&s) {
            Ok(()) => return s,
            Err(state) => assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last state: {state}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn column(stats: &[(String, f64)], name: &str) -> f64 {
    stats
        .iter()
        .find(|(c, _)| c == name)
        .unwrap_or_else(|| panic!("no {name} in SHOW STATS: {stats:?}"))
        .1
}

#[tokio::test]
async fn waiting_clients_pools_and_stats_match_pgbouncer() {
    let pg = Postgres::start();
    let bouncer = Pgbouncer::start(&pg, 1);
    let mut collector = PgbouncerCollector::new(&config(bouncer.admin_dsn()));
    let instance = format!("127.0.0.1:{}", bouncer.port);
    let app = [("database", "app"), ("user", "postgres")];

    // Client A holds the pool's only server connection inside a transaction.
    let a = client(&bouncer.app_dsn()).await;
    a.simple_query("BEGIN; SELECT 1").await.unwrap();
    // Client B's query must wait for it.
    let b = client(&bouncer.app_dsn()).await;
    let waiting = tokio::spawn(async move {
        b.simple_query("SELECT 2").await.unwrap();
        b
    });
    let samples = collect_until(&mut collector, "a client waiting in pool app", |s| {
        match find(s, "pgbouncer_pools_client_waiting_connections", &app) {
            Some(w) if w.value == 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(value(&samples, "pgbouncer_up", &[]), 1.0);
    for s in &samples {
        assert_eq!(s.label("instance"), Some(instance.as_str()), "{s:?}");
    }
    assert_eq!(
        value(&samples, "pgbouncer_pools_client_active_connections", &app),
        1.0
    );
    assert_eq!(
        value(&samples, "pgbouncer_pools_server_active_connections", &app),
        1.0
    );
    assert_eq!(
        value(&samples, "pgbouncer_pools_server_idle_connections", &app),
        0.0
    );
    assert!(value(&samples, "pgbouncer_pools_client_maxwait_seconds", &app) >= 0.0);
    let pool_size = value(&samples, "pgbouncer_databases_pool_size", &[("name", "app")]);
    assert_eq!(pool_size, 1.0, "saturated: active / pool_size = 1");
    let db = find(&samples, "pgbouncer_databases_pool_size", &[("name", "app")]).unwrap();
    assert_eq!(db.label("database"), Some("postgres"), "the server-side database");
    assert_eq!(
        value(&samples, "pgbouncer_config_max_client_connections", &[]),
        50.0
    );
    assert!(
        value(&samples, "pgbouncer_pools", &[]) >= 2.0,
        "app and the admin console"
    );
    assert!(find(&samples, "pgbouncer_version_info", &[]).is_some());

    // A commits: B gets the connection, and nobody waits any more.
    a.simple_query("COMMIT").await.unwrap();
    let b = tokio::time::timeout(HANG, waiting).await.unwrap().unwrap();
    collect_until(&mut collector, "no client waiting in pool app", |s| {
        let w = value(s, "pgbouncer_pools_client_waiting_connections", &app);
        if w == 0.0 {
            Ok(())
        } else {
            Err(format!("{w} waiting"))
        }
    })
    .await;

    // Some traffic, then totals compared with SHOW STATS while nothing runs.
    for _ in 0..20 {
        b.simple_query("SELECT pg_sleep(0.005)").await.unwrap();
    }
    let samples = collector.collect().await.unwrap();
    let admin = client(&bouncer.admin_dsn()).await;
    let stats = show_stats_app(&admin).await;
    let db = [("database", "app")];
    let queries = value(&samples, "pgbouncer_stats_queries_pooled_total", &db);
    assert_eq!(queries, column(&stats, "total_query_count"));
    assert!(queries >= 23.0, "1 + 1 + 20 + BEGIN/COMMIT: {queries}");
    let query_seconds = value(&samples, "pgbouncer_stats_queries_duration_seconds_total", &db);
    assert!((query_seconds - column(&stats, "total_query_time") * 1e-6).abs() < 1e-9);
    assert!(
        query_seconds >= 20.0 * 0.005,
        "20 sleeps of 5 ms: {query_seconds}"
    );
    let wait_seconds = value(&samples, "pgbouncer_stats_client_wait_seconds_total", &db);
    assert!((wait_seconds - column(&stats, "total_wait_time") * 1e-6).abs() < 1e-9);
    assert!(wait_seconds > 0.0, "B waited");
    let xacts = value(&samples, "pgbouncer_stats_sql_transactions_pooled_total", &db);
    assert_eq!(xacts, column(&stats, "total_xact_count"));
    let xact_seconds = value(
        &samples,
        "pgbouncer_stats_server_in_transaction_seconds_total",
        &db,
    );
    assert!((xact_seconds - column(&stats, "total_xact_time") * 1e-6).abs() < 1e-9);
    // The dashboard's "average query time" (rate of seconds / rate of queries) over the
    // whole life equals PgBouncer's own total time / total count.
    let average = query_seconds / queries;
    let bouncer_average = column(&stats, "total_query_time") / column(&stats, "total_query_count") * 1e-6;
    assert!(
        (average - bouncer_average).abs() < 1e-9,
        "{average} vs {bouncer_average}"
    );
    assert_eq!(
        find(&samples, "pgbouncer_stats_queries_pooled_total", &db)
            .unwrap()
            .kind,
        MetricKind::Counter
    );
}

#[tokio::test]
async fn unreachable_console_gives_up_zero() {
    let dsn = format!("postgres://postgres@127.0.0.1:{}/pgbouncer", free_port());
    let mut c = PgbouncerCollector::new(&config(dsn));
    let samples = c.collect().await.unwrap();
    assert_eq!(value(&samples, "pgbouncer_up", &[]), 0.0);
    assert_eq!(samples.len(), 1);
}
