//! The shipped PostgreSQL dashboard over real data: a real PostgreSQL with
//! `pg_stat_statements` (testkit), the agent's PostgreSQL collector reading it, its samples
//! stored as the ingest path stores them (with `job` and the target's `instance`), and the
//! dashboard page rendered by the real router. The two statement tables show the normalised
//! statement text from the catalogue, with the value in the first column.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use didban_agent::collectors::postgres::PostgresCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::PostgresConfig;
use didban_store::{Labels, Sample, SeriesSamples};
use didban_testkit::postgres::Postgres;
use tokio_postgres::NoTls;

use crate::support::{get, test_ui};

async fn client(dsn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The HTML of the panel titled `title` (from its heading to the end of its section).
fn panel<'a>(page: &'a str, title: &str) -> &'a str {
    let at = page
        .find(&format!(">{title}</h2>"))
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    let rest = &page[at..];
    &rest[..rest.find("</section>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dashboard_shows_statement_text_value_first() {
    let pg = Postgres::start();
    let admin = client(&pg.dsn("postgres")).await;
    admin
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE app").await.unwrap();
    let app = client(&pg.dsn("app")).await;
    app.batch_execute("CREATE TABLE orders (id int primary key, customer_name text, total numeric)")
        .await
        .unwrap();
    // Only the statements below count (CREATE DATABASE takes longer than any of them).
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .unwrap();
    let ui = test_ui();
    let instance = format!("127.0.0.1:{}", pg.port);
    let mut collector = PostgresCollector::new(&PostgresConfig {
        dsn: pg.dsn("postgres"),
        tls_ca_file: String::new(),
        interval: None,
        slow_queries_top_n: 20,
        timeout: Duration::from_secs(10),
    });
    // Two collections with work in between, so rates have two points.
    for round in 0..2 {
        app.batch_execute("SELECT pg_sleep(0.2)").await.unwrap();
        app.query(
            "SELECT id,   customer_name\n  FROM orders WHERE customer_name LIKE $1 AND id > $2 ORDER BY id DESC LIMIT 10",
            &[&"a%", &0i32],
        )
        .await
        .unwrap();
        let samples = collector.collect().await.unwrap();
        let mut series: BTreeMap<Vec<(String, String)>, Vec<Sample>> = BTreeMap::new();
        for s in samples {
            let mut labels = vec![("__name__".to_string(), s.name.clone())];
            labels.extend(s.labels.iter().cloned());
            if !labels.iter().any(|(k, _)| k == "instance") {
                labels.push(("instance".into(), instance.clone()));
            }
            labels.push(("job".into(), "didban-agent".into()));
            labels.sort();
            series
                .entry(labels)
                .or_default()
                .push(Sample::new(s.timestamp_ms, s.value));
        }
        let batch: Vec<SeriesSamples> = series
            .into_iter()
            .map(|(labels, samples)| SeriesSamples {
                labels: Labels::from_pairs(labels),
                samples,
                histograms: Vec::new(),
            })
            .collect();
        let report = ui.ctx.db.append(batch).await.unwrap();
        assert_eq!(report.rejected_total(), 0, "round {round}: {report:?}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    let (status, page) = get(&ui.ctx, "/dashboards/postgresql?from=now-15m&to=now").await;
    assert_eq!(status.as_u16(), 200);
    let long_text = "SELECT id, customer_name FROM orders WHERE customer_name LIKE $1 AND id &gt; $2 ORDER BY id DESC LIMIT $3";
    for title in ["Slowest statements (mean time)", "Statements by time spent"] {
        let html = panel(&page, title);
        assert!(!html.contains("No data"), "{title}: {html}");
        // The value is the first column, then the statement text and the database.
        assert!(
            html.contains(r#"<thead><tr><th scope="col" class="num">Value</th><th scope="col">query</th><th scope="col">datname</th>"#),
            "{title}: {html}"
        );
        // Text as PostgreSQL normalised it, whitespace collapsed, beside its value.
        assert!(html.contains("<td>SELECT pg_sleep($1)</td>"), "{title}: {html}");
        // Long text is clamped, with all of it in the tooltip.
        assert!(
            html.contains(&format!(r#"<td class="long" title="{long_text}">"#)),
            "{title}: {html}"
        );
        assert!(html.contains("<td>app</td>"), "{title}");
    }
    // pg_sleep(0.2) is the slowest by mean time: the first row of that table.
    let slowest = panel(&page, "Slowest statements (mean time)");
    let first_row = &slowest[slowest.find("<tbody><tr>").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(first_row.contains("pg_sleep"), "{first_row}");
    assert!(
        first_row.contains(r#"<td class="num">2"#),
        "about 200 ms: {first_row}"
    );
}
