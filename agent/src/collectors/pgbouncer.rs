//! PgBouncer pools, clients waiting, server connections and query/wait time totals from its
//! admin console (`SHOW POOLS`, `SHOW STATS`, `SHOW DATABASES`, `SHOW LISTS`, `SHOW CONFIG`,
//! `SHOW VERSION`), named like prometheus-community/pgbouncer_exporter
//! (`pgbouncer_pools_client_waiting_connections{database,user}`,
//! `pgbouncer_stats_queries_duration_seconds_total{database}`, …). The admin console speaks
//! only the simple query protocol, so every command goes through `simple_query`. Times that
//! PgBouncer counts in microseconds are reported in seconds. Every sample carries
//! `instance` = the console's `host:port`. Each command runs on its own: one that fails is
//! warned about once and the others go on.

use std::collections::HashSet;

use futures::future::BoxFuture;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::collectors::postgres::address::instance_of as dsn_instance;
use crate::collectors::Collector;
use crate::config::PgbouncerConfig;
use crate::error::CollectError;
use crate::model::{MetricKind, Sample};
use didban_base::now_ms;

/// `SHOW POOLS` columns: (column, metric suffix after `pgbouncer_pools_`).
const POOL_COLUMNS: &[(&str, &str)] = &[
    ("cl_active", "client_active_connections"),
    ("cl_waiting", "client_waiting_connections"),
    ("cl_active_cancel_req", "client_active_cancel_connections"),
    ("cl_waiting_cancel_req", "client_waiting_cancel_connections"),
    ("sv_active", "server_active_connections"),
    ("sv_active_cancel", "server_active_cancel_connections"),
    ("sv_being_canceled", "server_being_canceled_connections"),
    ("sv_idle", "server_idle_connections"),
    ("sv_used", "server_used_connections"),
    ("sv_tested", "server_testing_connections"),
    ("sv_login", "server_login_connections"),
];

/// `SHOW STATS` totals (column without its `total_` prefix, metric suffix after
/// `pgbouncer_stats_`, factor to the metric's unit). Both the old (`received`) and the
/// `SHOW STATS_TOTALS` spelling (`bytes_received`) are listed.
const STATS_COLUMNS: &[(&str, &str, f64)] = &[
    ("query_count", "queries_pooled_total", 1.0),
    ("query_time", "queries_duration_seconds_total", 1e-6),
    ("received", "received_bytes_total", 1.0),
    ("bytes_received", "received_bytes_total", 1.0),
    ("sent", "sent_bytes_total", 1.0),
    ("bytes_sent", "sent_bytes_total", 1.0),
    ("requests", "queries_total", 1.0),
    ("wait_time", "client_wait_seconds_total", 1e-6),
    ("xact_count", "sql_transactions_pooled_total", 1.0),
    ("xact_time", "server_in_transaction_seconds_total", 1e-6),
    ("client_parse_count", "client_parses_total", 1.0),
    ("server_parse_count", "server_parses_total", 1.0),
    ("bind_count", "binds_total", 1.0),
];

/// `SHOW DATABASES` gauges (column, metric suffix after `pgbouncer_databases_`).
const DATABASE_COLUMNS: &[(&str, &str)] = &[
    ("pool_size", "pool_size"),
    ("reserve_pool", "reserve_pool"),
    ("reserve_pool_size", "reserve_pool"),
    ("max_connections", "max_connections"),
    ("current_connections", "current_connections"),
    ("paused", "paused"),
    ("disabled", "disabled"),
];

/// `SHOW DATABASES` columns that become labels.
const DATABASE_LABELS: &[&str] = &["name", "host", "port", "database", "force_user", "pool_mode"];

/// `SHOW LISTS` rows (list, metric name).
const LISTS: &[(&str, &str)] = &[
    ("databases", "pgbouncer_databases"),
    ("users", "pgbouncer_users"),
    ("pools", "pgbouncer_pools"),
    ("free_clients", "pgbouncer_free_clients"),
    ("used_clients", "pgbouncer_used_clients"),
    ("login_clients", "pgbouncer_login_clients"),
    ("free_servers", "pgbouncer_free_servers"),
    ("used_servers", "pgbouncer_used_servers"),
    ("dns_names", "pgbouncer_cached_dns_names"),
    ("dns_zones", "pgbouncer_cached_dns_zones"),
    ("dns_queries", "pgbouncer_in_flight_dns_queries"),
];

/// `SHOW CONFIG` keys (key, metric name).
const CONFIG_KEYS: &[(&str, &str)] = &[
    ("max_client_conn", "pgbouncer_config_max_client_connections"),
    ("max_user_connections", "pgbouncer_config_max_user_connections"),
];

/// The rows of one `SHOW` command, by column name.
#[derive(Debug, Default)]
pub struct Table {
    /// Column names in order.
    pub columns: Vec<String>,
    /// Values (NULL as `None`), one vector per row in column order.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The text of `column` in `row`, empty when absent or NULL.
    pub fn text(&self, row: &[Option<String>], column: &str) -> String {
        self.index(column)
            .and_then(|i| row.get(i).cloned().flatten())
            .unwrap_or_default()
    }

    /// The number in `column` of `row`, if there is one.
    pub fn number(&self, row: &[Option<String>], column: &str) -> Option<f64> {
        let i = self.index(column)?;
        row.get(i)?.as_deref()?.trim().parse().ok()
    }
}

/// Watches one PgBouncer.
pub struct PgbouncerCollector {
    config: PgbouncerConfig,
    instance: String,
    client: Option<Client>,
    /// Commands that already warned, so a missing privilege is said once.
    warned: HashSet<&'static str>,
    reachability: crate::collectors::Reachability,
}

impl PgbouncerCollector {
    /// A collector for `config.dsn`; connects on first collection.
    pub fn new(config: &PgbouncerConfig) -> PgbouncerCollector {
        PgbouncerCollector {
            instance: dsn_instance(&config.dsn),
            config: config.clone(),
            client: None,
            warned: HashSet::new(),
            reachability: Default::default(),
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let pg: tokio_postgres::Config = self.config.dsn.parse().map_err(|e| format!("dsn: {e}"))?;
        let timeout = self.config.timeout;
        let (client, connection) = match tokio::time::timeout(timeout, pg.connect(NoTls)).await {
            Ok(r) => r.map_err(|e| format!("connecting: {e}"))?,
            Err(_) => return Err(format!("connecting: timed out after {timeout:?}")),
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "pgbouncer connection closed");
            }
        });
        self.client = Some(client);
        Ok(())
    }

    /// Runs one `SHOW`; the error is the server's message.
    async fn show(&self, command: &str) -> Result<Table, String> {
        let client = self.client.as_ref().ok_or("not connected")?;
        let messages = match tokio::time::timeout(self.config.timeout, client.simple_query(command)).await {
            Ok(r) => r.map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            })?,
            Err(_) => return Err(format!("timed out after {:?}", self.config.timeout)),
        };
        let mut table = Table::default();
        for m in messages {
            if let SimpleQueryMessage::Row(row) = m {
                if table.columns.is_empty() {
                    for c in row.columns() {
                        table.columns.push(c.name().to_string());
                    }
                }
                let mut values = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    values.push(row.get(i).map(str::to_string));
                }
                table.rows.push(values);
            }
        }
        Ok(table)
    }

    /// Like [`Self::show`]; a failure is warned about once and gives no rows. A closed
    /// connection is an error for the whole collection.
    async fn show_or_warn(&mut self, what: &'static str) -> Result<Table, String> {
        match self.show(what).await {
            Ok(t) => {
                self.warned.remove(what);
                Ok(t)
            }
            Err(e) => {
                if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                    return Err(format!("{what}: {e}"));
                }
                if self.warned.insert(what) {
                    tracing::warn!(instance = %self.instance, command = what, error = %e, "pgbouncer command failed; other commands go on");
                }
                Ok(Table::default())
            }
        }
    }

    async fn collect_all(&mut self, now: i64) -> Result<Vec<Sample>, String> {
        self.connect().await?;
        let instance = self.instance.clone();
        let mut out = Vec::new();

        let pools = self.show_or_warn("SHOW POOLS").await?;
        for row in &pools.rows {
            let (database, user) = (pools.text(row, "database"), pools.text(row, "user"));
            let labels = [
                ("instance", instance.as_str()),
                ("database", database.as_str()),
                ("user", user.as_str()),
            ];
            for (column, suffix) in POOL_COLUMNS {
                if let Some(v) = pools.number(row, column) {
                    out.push(Sample::gauge(
                        &format!("pgbouncer_pools_{suffix}"),
                        &labels,
                        v,
                        now,
                    ));
                }
            }
            if let Some(seconds) = pools.number(row, "maxwait") {
                let micros = pools.number(row, "maxwait_us").unwrap_or(0.0);
                out.push(Sample::gauge(
                    "pgbouncer_pools_client_maxwait_seconds",
                    &labels,
                    seconds + micros * 1e-6,
                    now,
                ));
            }
        }

        let stats = self.show_or_warn("SHOW STATS").await?;
        for row in &stats.rows {
            let database = stats.text(row, "database");
            let labels = [("instance", instance.as_str()), ("database", database.as_str())];
            for (column, suffix, factor) in STATS_COLUMNS {
                let value = stats
                    .number(row, &format!("total_{column}"))
                    .or_else(|| stats.number(row, column));
                if let Some(v) = value {
                    out.push(Sample::counter(
                        &format!("pgbouncer_stats_{suffix}"),
                        &labels,
                        v * factor,
                        now,
                    ));
                }
            }
        }

        let databases = self.show_or_warn("SHOW DATABASES").await?;
        for row in &databases.rows {
            let mut values = Vec::new();
            for label in DATABASE_LABELS {
                values.push((*label, databases.text(row, label)));
            }
            let mut labels = vec![("instance", instance.as_str())];
            for (k, v) in &values {
                labels.push((k, v.as_str()));
            }
            for (column, suffix) in DATABASE_COLUMNS {
                if let Some(v) = databases.number(row, column) {
                    out.push(Sample::gauge(
                        &format!("pgbouncer_databases_{suffix}"),
                        &labels,
                        v,
                        now,
                    ));
                }
            }
        }

        let labels = [("instance", instance.as_str())];
        let lists = self.show_or_warn("SHOW LISTS").await?;
        for row in &lists.rows {
            let list = lists.text(row, "list");
            for (name, metric) in LISTS {
                if list == *name {
                    if let Some(v) = lists.number(row, "items") {
                        out.push(Sample::gauge(metric, &labels, v, now));
                    }
                }
            }
        }

        let config = self.show_or_warn("SHOW CONFIG").await?;
        for row in &config.rows {
            let key = config.text(row, "key");
            for (name, metric) in CONFIG_KEYS {
                if key == *name {
                    if let Some(v) = config.number(row, "value") {
                        out.push(Sample::gauge(metric, &labels, v, now));
                    }
                }
            }
        }

        let version = self.show_or_warn("SHOW VERSION").await?;
        if let Some(row) = version.rows.first() {
            let text = version.text(row, "version");
            let number = text.trim_start_matches("PgBouncer").trim();
            let number = number.split_whitespace().next().unwrap_or_default();
            out.push(Sample::new(
                "pgbouncer_version_info",
                &[("instance", instance.as_str()), ("version", number)],
                MetricKind::Gauge,
                1.0,
                now,
            ));
        }
        Ok(out)
    }
}

impl Collector for PgbouncerCollector {
    fn name(&self) -> String {
        format!("pgbouncer/{}", self.instance)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let result = self.collect_all(now).await;
            let up = self.reachability.record("pgbouncer", &self.instance, &result);
            let mut out = result.unwrap_or_else(|_| {
                self.client = None;
                Vec::new()
            });
            out.push(Sample::gauge(
                "pgbouncer_up",
                &[("instance", self.instance.as_str())],
                up,
                now,
            ));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PgBouncer's DSN is a libpq DSN: the PostgreSQL collector's `instance` rule applies.
    #[test]
    fn instance_is_host_and_port_without_credentials() {
        assert_eq!(
            dsn_instance("postgres://stats:secret@db-1:6432/pgbouncer"),
            "db-1:6432"
        );
        assert_eq!(
            dsn_instance("host=10.0.0.5 user=u dbname=pgbouncer"),
            "10.0.0.5:5432"
        );
        assert_eq!(
            dsn_instance("host=/var/run/postgresql port=6432 dbname=pgbouncer"),
            "localhost:6432"
        );
    }

    #[test]
    fn table_reads_by_column_name() {
        let t = Table {
            columns: vec!["database".into(), "cl_waiting".into(), "maxwait".into()],
            rows: vec![vec![Some("app".into()), Some("3".into()), None]],
        };
        let row = &t.rows[0];
        assert_eq!(t.text(row, "database"), "app");
        assert_eq!(t.number(row, "cl_waiting"), Some(3.0));
        assert_eq!(t.number(row, "maxwait"), None);
        assert_eq!(t.number(row, "missing"), None);
    }
}
