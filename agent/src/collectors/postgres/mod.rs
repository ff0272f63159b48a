//! PostgreSQL, named like postgres_exporter: `pg_stat_database_*`, `pg_stat_activity_*`,
//! `pg_locks_count`, `pg_database_size_bytes`, `pg_settings_max_connections`, replication lag,
//! and the slowest statements of `pg_stat_statements` (top N by total time, so cardinality
//! stays bounded; statement texts go out as log records, see [`statements`]), handling the PG 13 (`total_time` → `total_exec_time`) and PG 17
//! (`blk_read_time` → `shared_blk_read_time`) renames. Each query runs on its own: a missing
//! privilege or extension gives one warning and the other queries go on.
//!
//! Every sample carries `instance` = the server's `host:port` ([`address`]), so several
//! servers on one agent stay apart; the exporter adds the agent's own host as `agent_host`.

use std::collections::HashSet;

use futures::future::BoxFuture;
use tokio_postgres::{Client, NoTls, Row};

use crate::collectors::Collector;
use crate::config::PostgresConfig;
use crate::error::CollectError;
use crate::export::OtlpSink;
use crate::model::{MetricKind, Sample};
use didban_base::now_ms;
use statements::{statements_sql, QueryLog, Statement};

pub mod address;
pub mod statements;

/// Columns of `pg_stat_database` reported as `pg_stat_database_<column>` (kind per
/// postgres_exporter: `numbackends` is a gauge, the rest are counters).
const STAT_DATABASE_COLUMNS: &[(&str, MetricKind)] = &[
    ("numbackends", MetricKind::Gauge),
    ("xact_commit", MetricKind::Counter),
    ("xact_rollback", MetricKind::Counter),
    ("blks_read", MetricKind::Counter),
    ("blks_hit", MetricKind::Counter),
    ("tup_returned", MetricKind::Counter),
    ("tup_fetched", MetricKind::Counter),
    ("tup_inserted", MetricKind::Counter),
    ("tup_updated", MetricKind::Counter),
    ("tup_deleted", MetricKind::Counter),
    ("conflicts", MetricKind::Counter),
    ("temp_files", MetricKind::Counter),
    ("temp_bytes", MetricKind::Counter),
    ("deadlocks", MetricKind::Counter),
    ("blk_read_time", MetricKind::Counter),
    ("blk_write_time", MetricKind::Counter),
];

const ACTIVITY_SQL: &str = "SELECT d.datname::text, s.state, count(a.pid)::float8, \
    coalesce(max(extract(epoch FROM now() - a.xact_start)), 0)::float8, \
    coalesce(max(extract(epoch FROM now() - a.query_start)), 0)::float8 \
    FROM pg_database d \
    CROSS JOIN (VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'), \
        ('fastpath function call'), ('disabled')) AS s(state) \
    LEFT JOIN pg_stat_activity a ON a.datname = d.datname AND a.state = s.state \
    WHERE d.datallowconn GROUP BY d.datname, s.state";

const LOCKS_SQL: &str = "SELECT d.datname::text, m.mode, count(l.mode)::float8 \
    FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), ('shareupdateexclusivelock'), \
        ('sharelock'), ('sharerowexclusivelock'), ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) \
    CROSS JOIN pg_database d \
    LEFT JOIN pg_locks l ON lower(l.mode) = m.mode AND l.database = d.oid \
    WHERE d.datallowconn GROUP BY d.datname, m.mode";

const SIZES_SQL: &str = "SELECT datname::text, pg_database_size(datname)::float8 FROM pg_database \
    WHERE datallowconn AND has_database_privilege(datname, 'CONNECT')";

const REPLICA_SQL: &str = "SELECT pg_is_in_recovery(), \
    CASE WHEN NOT pg_is_in_recovery() THEN 0 \
    ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8";

const REPLICATION_SQL: &str = "SELECT coalesce(application_name, ''), coalesce(host(client_addr), ''), \
    coalesce(state, ''), coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 \
    FROM pg_stat_replication";

/// Watches one PostgreSQL server.
pub struct PostgresCollector {
    config: PostgresConfig,
    target: String,
    /// `instance` of every sample: the server's `host:port`.
    instance: String,
    client: Option<Client>,
    version_num: i32,
    /// Queries that already warned, so a missing privilege is said once, not every interval.
    warned: HashSet<&'static str>,
    reachability: crate::collectors::Reachability,
    /// Where statement texts go, if anywhere.
    query_log: Option<QueryLog>,
}

/// The DSN without its password, for logs and the collector name.
fn redact(dsn: &str) -> String {
    let mut out = Vec::new();
    for part in dsn.split_whitespace() {
        if part.starts_with("password=") {
            out.push("password=***".to_string());
        } else if let (Some((scheme, _)), Some(at)) = (part.split_once("://"), part.rfind('@')) {
            out.push(format!("{scheme}://{}", &part[at + 1..]));
        } else {
            out.push(part.to_string());
        }
    }
    out.join(" ")
}

fn f(row: &Row, i: usize) -> f64 {
    row.try_get::<_, Option<f64>>(i).ok().flatten().unwrap_or(0.0)
}

fn s(row: &Row, i: usize) -> String {
    row.try_get::<_, Option<String>>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl PostgresCollector {
    /// A collector for `config.dsn`; connects on first collection.
    pub fn new(config: &PostgresConfig) -> PostgresCollector {
        PostgresCollector {
            target: redact(&config.dsn),
            instance: address::instance_of(&config.dsn),
            config: config.clone(),
            client: None,
            version_num: 0,
            warned: HashSet::new(),
            reachability: Default::default(),
            query_log: None,
        }
    }

    /// Also ships each slow statement's normalized text once as an OTLP log record.
    pub fn with_query_log(mut self, sink: OtlpSink, host_name: &str) -> PostgresCollector {
        self.query_log = Some(QueryLog::new(sink, host_name));
        self
    }

    /// Opens a connection: verified TLS for `sslmode=require`, plain otherwise.
    async fn open(&self) -> Result<Client, String> {
        let pg: tokio_postgres::Config = self.config.dsn.parse().map_err(|e| format!("dsn: {e}"))?;
        let timeout = self.config.timeout;
        let timed_out = || format!("connecting: timed out after {timeout:?}");
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            let tls = crate::tls::rustls_client(&self.config.tls_ca_file)?;
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, connection) = match tokio::time::timeout(timeout, pg.connect(tls)).await {
                Ok(r) => r.map_err(|e| format!("connecting (TLS): {e}"))?,
                Err(_) => return Err(timed_out()),
            };
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres connection closed");
                }
            });
            return Ok(client);
        }
        let (client, connection) = match tokio::time::timeout(timeout, pg.connect(NoTls)).await {
            Ok(r) => r.map_err(|e| format!("connecting: {e}"))?,
            Err(_) => return Err(timed_out()),
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection closed");
            }
        });
        Ok(client)
    }

    async fn connect(&mut self) -> Result<(), String> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let client = self.open().await?;
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int4", &[])
            .await;
        self.version_num = match row {
            Ok(r) => r.try_get::<_, i32>(0).unwrap_or(0),
            Err(e) => return Err(format!("reading server_version_num: {e}")),
        };
        self.client = Some(client);
        Ok(())
    }

    /// Runs one query; on failure warns once for `what` and returns no rows.
    async fn rows(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<Row> {
        let Some(client) = self.client.as_ref() else {
            return Vec::new();
        };
        let result = match tokio::time::timeout(self.config.timeout, client.query(sql, params)).await {
            Ok(r) => r.map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            }),
            Err(_) => Err(format!("timed out after {:?}", self.config.timeout)),
        };
        match result {
            Ok(rows) => {
                self.warned.remove(what);
                rows
            }
            Err(e) => {
                if self.warned.insert(what) {
                    let hint = if what == "pg_stat_statements" {
                        " (needs shared_preload_libraries = 'pg_stat_statements' and CREATE EXTENSION pg_stat_statements in the connected database)"
                    } else {
                        ""
                    };
                    tracing::warn!(target = %self.target, query = what, error = %e, "postgres query failed; other queries go on{hint}");
                }
                Vec::new()
            }
        }
    }

    async fn collect_all(&mut self, now: i64) -> Result<Vec<Sample>, String> {
        self.connect().await?;
        let mut out = Vec::new();
        let mut columns = String::new();
        for (i, (col, _)) in STAT_DATABASE_COLUMNS.iter().enumerate() {
            if i > 0 {
                columns.push_str(", ");
            }
            columns.push_str(&format!("{col}::float8"));
        }
        let sql = format!(
            "SELECT datid::text, datname::text, {columns} FROM pg_stat_database WHERE datname IS NOT NULL"
        );
        for row in self.rows("pg_stat_database", &sql, &[]).await {
            let (datid, datname) = (s(&row, 0), s(&row, 1));
            for (i, (col, kind)) in STAT_DATABASE_COLUMNS.iter().enumerate() {
                let labels = [("datid", datid.as_str()), ("datname", datname.as_str())];
                out.push(Sample::new(
                    &format!("pg_stat_database_{col}"),
                    &labels,
                    *kind,
                    f(&row, i + 2),
                    now,
                ));
            }
        }
        for row in self.rows("pg_stat_activity", ACTIVITY_SQL, &[]).await {
            let (datname, state) = (s(&row, 0), s(&row, 1));
            let labels = [("datname", datname.as_str()), ("state", state.as_str())];
            out.push(Sample::gauge("pg_stat_activity_count", &labels, f(&row, 2), now));
            out.push(Sample::gauge(
                "pg_stat_activity_max_tx_duration",
                &labels,
                f(&row, 3),
                now,
            ));
            out.push(Sample::gauge(
                "pg_stat_activity_max_query_duration",
                &labels,
                f(&row, 4),
                now,
            ));
        }
        let settings_sql = "SELECT name, setting::float8 FROM pg_settings \
            WHERE name IN ('max_connections', 'superuser_reserved_connections')";
        for row in self.rows("pg_settings", settings_sql, &[]).await {
            out.push(Sample::gauge(
                &format!("pg_settings_{}", s(&row, 0)),
                &[],
                f(&row, 1),
                now,
            ));
        }
        for row in self.rows("pg_locks", LOCKS_SQL, &[]).await {
            let labels = [("datname", s(&row, 0)), ("mode", s(&row, 1))];
            let labels = [("datname", labels[0].1.as_str()), ("mode", labels[1].1.as_str())];
            out.push(Sample::gauge("pg_locks_count", &labels, f(&row, 2), now));
        }
        for row in self.rows("pg_database_size", SIZES_SQL, &[]).await {
            out.push(Sample::gauge(
                "pg_database_size_bytes",
                &[("datname", &s(&row, 0))],
                f(&row, 1),
                now,
            ));
        }
        for row in self.rows("replication", REPLICA_SQL, &[]).await {
            let replica = row.try_get::<_, bool>(0).unwrap_or(false);
            out.push(Sample::gauge(
                "pg_replication_is_replica",
                &[],
                f64::from(u8::from(replica)),
                now,
            ));
            out.push(Sample::gauge("pg_replication_lag_seconds", &[], f(&row, 1), now));
        }
        for row in self.rows("pg_stat_replication", REPLICATION_SQL, &[]).await {
            let (app, addr, state) = (s(&row, 0), s(&row, 1), s(&row, 2));
            let labels = [
                ("application_name", app.as_str()),
                ("client_addr", addr.as_str()),
                ("state", state.as_str()),
            ];
            out.push(Sample::gauge(
                "pg_stat_replication_pg_wal_lsn_diff",
                &labels,
                f(&row, 3),
                now,
            ));
        }
        let top_n = i64::try_from(self.config.slow_queries_top_n).unwrap_or(i64::MAX);
        let sql = statements_sql(self.version_num);
        let mut statements = Vec::new();
        for row in self.rows("pg_stat_statements", &sql, &[&top_n]).await {
            let st = Statement::from_row(&row);
            st.samples(now, &mut out);
            statements.push(st);
        }
        statements::catalogue(&statements, now, &mut out);
        if let Some(log) = self.query_log.as_mut() {
            log.ship(
                &statements,
                u64::try_from(now).unwrap_or(0).saturating_mul(1_000_000),
            )
            .await;
        }
        let version = self.version_num.to_string();
        out.push(Sample::gauge(
            "pg_static",
            &[("server_version_num", &version)],
            1.0,
            now,
        ));
        Ok(out)
    }
}

impl Collector for PostgresCollector {
    fn name(&self) -> String {
        format!("postgres/{}", self.target)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let result = self.collect_all(now).await;
            let up = self.reachability.record("postgres", &self.target, &result);
            let mut out = result.unwrap_or_else(|_| {
                self.client = None;
                Vec::new()
            });
            out.push(Sample::gauge("pg_up", &[], up, now));
            for sample in &mut out {
                if sample.label("instance").is_none() {
                    sample
                        .labels
                        .push(("instance".to_string(), self.instance.clone()));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            redact("host=x password=secret user=u"),
            "host=x password=*** user=u"
        );
        assert_eq!(redact("postgres://u:pw@h:5432/db"), "postgres://h:5432/db");
    }
}
