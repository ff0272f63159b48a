//! The statement catalogue (`pg_stat_statements_query_info`) against a real PostgreSQL with
//! `pg_stat_statements`: a frequent cheap statement (top by total time) and a rare slow one
//! (top by mean time) are both reported with N = 1, each with one catalogue entry carrying
//! its normalised text with whitespace collapsed, refreshed on every collection.

use std::time::Duration;

use didban_agent::collectors::postgres::PostgresCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::PostgresConfig;
use didban_agent::model::Sample;
use didban_testkit::postgres::Postgres;
use tokio_postgres::NoTls;

async fn client(dsn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Total execution seconds PostgreSQL itself reports for statements whose text contains `needle`.
async fn total_seconds(admin: &tokio_postgres::Client, needle: &str) -> f64 {
    let row = admin
        .query_one(
            "SELECT coalesce(sum(total_exec_time), 0)::float8 / 1000 FROM pg_stat_statements WHERE query LIKE '%' || $1 || '%'",
            &[&needle],
        )
        .await
        .unwrap();
    row.get(0)
}

fn info_for<'a>(samples: &'a [Sample], needle: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == "pg_stat_statements_query_info")
        .filter(|s| s.label("query").is_some_and(|q| q.contains(needle)))
        .collect()
}

#[tokio::test]
async fn catalogue_names_the_top_statements_by_total_and_by_mean_time() {
    let pg = Postgres::start();
    let admin = client(&pg.dsn("postgres")).await;
    admin
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = client(&pg.dsn("app")).await;
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .unwrap();

    // Rare and slow: one call of 0.3 s.
    app.batch_execute("SELECT pg_sleep(0.3)").await.unwrap();
    // Frequent and cheap: many calls until their total is over twice the slow one's.
    let frequent = "SELECT count(*)\n   FROM   generate_series(1, 100000)";
    let mut calls = 0;
    while total_seconds(&admin, "generate_series").await < 0.6 {
        for _ in 0..20 {
            app.query(frequent, &[]).await.unwrap();
            calls += 1;
        }
        assert!(calls < 100_000, "the frequent statement never added up");
    }

    let cfg = PostgresConfig {
        dsn: pg.dsn("postgres"),
        tls_ca_file: String::new(),
        interval: None,
        slow_queries_top_n: 1,
        timeout: Duration::from_secs(10),
    };
    let mut collector = PostgresCollector::new(&cfg);
    for round in 0..2 {
        // Every collection carries the catalogue again, not only the first one.
        let samples = collector.collect().await.unwrap();
        let by_total = info_for(&samples, "generate_series");
        assert_eq!(by_total.len(), 1, "round {round}: {samples:#?}");
        assert_eq!(
            by_total[0].label("query"),
            Some("SELECT count(*) FROM generate_series($1, $2)"),
            "whitespace collapsed"
        );
        assert_eq!(by_total[0].label("datname"), Some("app"));
        assert_eq!(by_total[0].value, 1.0);
        let by_mean = info_for(&samples, "pg_sleep");
        assert_eq!(by_mean.len(), 1, "round {round}");
        assert_eq!(by_mean[0].label("query"), Some("SELECT pg_sleep($1)"));
        // Bounded: N = 1 by total plus N = 1 by mean.
        let all: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "pg_stat_statements_query_info")
            .collect();
        assert!(all.len() <= 2, "{all:#?}");
        // Each catalogue entry joins the metrics of its statement.
        for info in &all {
            let queryid = info.label("queryid").unwrap();
            let mean = samples.iter().find(|s| {
                s.name == "pg_stat_statements_mean_seconds"
                    && s.label("queryid") == Some(queryid)
                    && s.label("datname") == info.label("datname")
            });
            assert!(mean.is_some(), "no mean for {info:?}");
        }
        let slow_mean = samples
            .iter()
            .find(|s| {
                s.name == "pg_stat_statements_mean_seconds"
                    && s.label("queryid") == by_mean[0].label("queryid")
            })
            .unwrap();
        assert!(slow_mean.value >= 0.3, "{slow_mean:?}");
    }
}
