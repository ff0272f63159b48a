//! PostgreSQL collector against a real server started by the test (initdb + pg_ctl, with
//! pg_stat_statements preloaded): slow queries show up, the cache hit counters move, and a
//! missing extension or privilege costs only its own metrics.

use std::time::Duration;

use crate::common::otlp::{start_grpc, Recorder};
use didban_agent::collectors::postgres::PostgresCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::ExportConfig;
use didban_agent::config::PostgresConfig;
use didban_agent::export::encode::ResourceInfo;
use didban_agent::export::Exporter;
use didban_agent::model::Sample;
use didban_testkit::certs::make_certs;
use didban_testkit::postgres::Postgres;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use std::sync::Arc;
use tokio_postgres::NoTls;

fn config(dsn: String) -> PostgresConfig {
    PostgresConfig {
        dsn,
        tls_ca_file: String::new(),
        interval: None,
        slow_queries_top_n: 5,
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

#[tokio::test]
async fn reports_database_activity_locks_sizes_and_slow_queries() {
    let pg = Postgres::start();
    let admin = client(&pg.dsn("postgres")).await;
    admin
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = client(&pg.dsn("app")).await;
    app.batch_execute("CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g;")
        .await
        .unwrap();

    // Statement texts go out as OTLP log records through a real exporter.
    let recorder = Arc::new(Recorder::default());
    let receiver = start_grpc(0, recorder.clone()).await;
    let buffer = tempfile::tempdir().unwrap();
    let export = ExportConfig {
        endpoint: receiver.endpoint(),
        flush_interval: Duration::from_millis(50),
        ..ExportConfig::default()
    };
    let resource = ResourceInfo {
        service_name: "didban-agent".into(),
        host_name: "db-host".into(),
    };
    let exporter = Exporter::start(&export, buffer.path(), resource).unwrap();
    let mut collector =
        PostgresCollector::new(&config(pg.dsn("postgres"))).with_query_log(exporter.otlp_sink(), "db-host");
    let first = collector.collect().await.unwrap();
    assert_eq!(value(&first, "pg_up", &[]), 1.0);
    // Every sample names the server it came from (never the agent's host).
    let instance = format!("127.0.0.1:{}", pg.port);
    for sample in &first {
        assert_eq!(sample.label("instance"), Some(instance.as_str()), "{sample:?}");
    }
    let hits_before = value(&first, "pg_stat_database_blks_hit", &[("datname", "app")]);

    // A slow statement, a held lock in an open transaction, and reads that hit the cache.
    app.execute("SELECT pg_sleep(0.6)", &[]).await.unwrap();
    for _ in 0..20 {
        app.query("SELECT count(*) FROM t WHERE v = 'x'", &[])
            .await
            .unwrap();
    }
    let holder = client(&pg.dsn("app")).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let samples = collector.collect().await.unwrap();
    let hits_after = value(&samples, "pg_stat_database_blks_hit", &[("datname", "app")]);
    assert!(
        hits_after > hits_before,
        "cache hits moved: {hits_before} -> {hits_after}"
    );
    assert!(value(&samples, "pg_stat_database_xact_commit", &[("datname", "app")]) > 0.0);
    assert!(find(&samples, "pg_stat_database_numbackends", &[("datname", "app")]).is_some());
    for col in [
        "xact_rollback",
        "blks_read",
        "temp_files",
        "temp_bytes",
        "deadlocks",
        "conflicts",
    ] {
        assert!(
            find(
                &samples,
                &format!("pg_stat_database_{col}"),
                &[("datname", "app")]
            )
            .is_some(),
            "{col}"
        );
    }
    assert_eq!(value(&samples, "pg_settings_max_connections", &[]), 100.0);
    assert!(value(&samples, "pg_database_size_bytes", &[("datname", "app")]) > 1e6);
    assert_eq!(
        value(
            &samples,
            "pg_locks_count",
            &[("datname", "app"), ("mode", "accessexclusivelock")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "pg_locks_count",
            &[("datname", "app"), ("mode", "sharelock")]
        ),
        0.0
    );
    let idle_tx = [("datname", "app"), ("state", "idle in transaction")];
    assert!(value(&samples, "pg_stat_activity_count", &idle_tx) >= 1.0);
    assert!(value(&samples, "pg_stat_activity_max_tx_duration", &idle_tx) >= 1.0);
    assert!(
        value(
            &samples,
            "pg_stat_activity_count",
            &[("datname", "app"), ("state", "idle")]
        ) >= 1.0
    );
    assert_eq!(value(&samples, "pg_replication_is_replica", &[]), 0.0);
    assert_eq!(value(&samples, "pg_replication_lag_seconds", &[]), 0.0);

    // pg_sleep is the top statement of app by total time, with its calls and seconds (the top 5
    // by total time and the top 5 by mean time are reported).
    let statements: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "pg_stat_statements_seconds_total")
        .collect();
    assert!(
        !statements.is_empty() && statements.len() <= 10,
        "top-N cap: {}",
        statements.len()
    );
    // In `app` (on a loaded machine `CREATE DATABASE app` in `postgres` can take longer).
    let slowest = statements
        .iter()
        .filter(|s| s.label("datname") == Some("app"))
        .max_by(|a, b| a.value.total_cmp(&b.value))
        .unwrap_or_else(|| panic!("no statement of app: {statements:#?}"));
    assert!(slowest.value >= 0.6, "{slowest:?}");
    assert_eq!(slowest.label("user"), Some("postgres"));
    let queryid = slowest.label("queryid").unwrap();
    let labels = [("queryid", queryid)];
    assert_eq!(value(&samples, "pg_stat_statements_calls_total", &labels), 1.0);
    assert!(value(&samples, "pg_stat_statements_mean_seconds", &labels) >= 0.6);
    holder.batch_execute("COMMIT").await.unwrap();

    // The normalized text of the slow statement arrived once, as a log record, not a label.
    assert!(exporter.wait_drained(Duration::from_secs(10)).await);
    collector.collect().await.unwrap();
    assert!(exporter.wait_drained(Duration::from_secs(10)).await);
    let texts: Vec<(String, String, String)> = recorder
        .log_records()
        .into_iter()
        .filter(|r| r.2.contains("pg_sleep"))
        .collect();
    assert_eq!(
        texts,
        vec![(
            "postgresql".into(),
            "db-host".into(),
            "SELECT pg_sleep($1)".into()
        )]
    );
    let has_id = recorder.logs.lock().unwrap().iter().any(|req| {
        req.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records).any(|r| {
            r.attributes.iter().any(|a| {
                a.key == "db.query.id"
                    && matches!(&a.value, Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }) if v == queryid)
            })
        })
    });
    assert!(has_id, "the log record carries the queryid of the metric");
    // The text is a label only of the bounded catalogue series.
    assert!(samples
        .iter()
        .all(|s| s.label("query").is_none() || s.name == "pg_stat_statements_query_info"));
    exporter.shutdown().await;
    receiver.stop().await;
}

#[tokio::test]
async fn missing_extension_or_privilege_costs_only_those_metrics() {
    let pg = Postgres::start();
    let admin = client(&pg.dsn("postgres")).await;
    // An unprivileged role in a database without the extension.
    admin.batch_execute("CREATE ROLE watcher LOGIN").await.unwrap();
    admin.batch_execute("CREATE DATABASE plain").await.unwrap();
    // Function privileges live in each database's catalog: revoke where the watcher connects.
    let plain = client(&pg.dsn("plain")).await;
    plain
        .batch_execute("REVOKE ALL ON FUNCTION pg_database_size(name) FROM PUBLIC")
        .await
        .unwrap();
    let logs = crate::common::logs::capture();
    let dsn = format!("host=127.0.0.1 port={} user=watcher dbname=plain", pg.port);
    let mut collector = PostgresCollector::new(&config(dsn));
    let samples = collector.collect().await.unwrap();
    assert_eq!(value(&samples, "pg_up", &[]), 1.0);
    assert!(find(&samples, "pg_stat_statements_seconds_total", &[]).is_none());
    assert!(find(&samples, "pg_database_size_bytes", &[]).is_none());
    assert!(find(&samples, "pg_stat_database_blks_hit", &[("datname", "plain")]).is_some());
    assert!(find(&samples, "pg_stat_activity_count", &[]).is_some());
    // Still fine on the next interval (warnings are not repeated, collection goes on).
    let again = collector.collect().await.unwrap();
    assert_eq!(value(&again, "pg_up", &[]), 1.0);
    let text = logs.text();
    assert_eq!(
        text.matches("query=\"pg_stat_statements\"").count(),
        1,
        "one warning, not one per interval:\n{text}"
    );
    assert_eq!(text.matches("query=\"pg_database_size\"").count(), 1, "{text}");
    assert!(
        text.contains("CREATE EXTENSION pg_stat_statements"),
        "the warning says what to do:\n{text}"
    );

    let wrong = format!("host=127.0.0.1 port={} user=nobody_here dbname=plain", pg.port);
    let mut bad = PostgresCollector::new(&config(wrong));
    assert_eq!(value(&bad.collect().await.unwrap(), "pg_up", &[]), 0.0);
}

#[tokio::test]
async fn sslmode_require_verifies_the_server_certificate() {
    let certs = make_certs();
    let pg = Postgres::start_tls(&certs);
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        pg.port
    );
    let mut cfg = config(dsn);
    cfg.tls_ca_file = certs.ca.to_str().unwrap().to_string();
    let mut tls = PostgresCollector::new(&cfg);
    assert_eq!(
        value(&tls.collect().await.unwrap(), "pg_up", &[]),
        1.0,
        "the server only accepts TLS"
    );
    // Not trusted without the CA; and plain connections are refused by the server.
    let mut untrusted = PostgresCollector::new(&PostgresConfig {
        tls_ca_file: String::new(),
        ..cfg.clone()
    });
    assert_eq!(value(&untrusted.collect().await.unwrap(), "pg_up", &[]), 0.0);
    let plain = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", pg.port);
    let mut plain = PostgresCollector::new(&config(plain));
    assert_eq!(value(&plain.collect().await.unwrap(), "pg_up", &[]), 0.0);
}
