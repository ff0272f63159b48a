//! Slow statements from `pg_stat_statements`: the top N by total time as postgres_exporter
//! metrics, and the normalized query text of each statement shipped once as an OTLP log record
//! (attributes `db.query.id`, `db.namespace`, `db.user`), never as a label, so cardinality
//! stays bounded.

use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio_postgres::Row;

use crate::export::{OtlpSink, Signal};
use crate::model::Sample;
use didban_base::otlp::kv;

/// Most query texts remembered as already shipped.
pub const MAX_SHIPPED: usize = 10_000;

/// The `pg_stat_statements` query for a server version: PG 12 has `total_time`/`mean_time`,
/// PG 13+ `total_exec_time`/`mean_exec_time`, PG 17+ `shared_blk_read_time`.
pub fn statements_sql(version_num: i32) -> String {
    let (total, mean) = if version_num >= 130000 {
        ("total_exec_time", "mean_exec_time")
    } else {
        ("total_time", "mean_time")
    };
    let (read, write) = if version_num >= 170000 {
        ("shared_blk_read_time", "shared_blk_write_time")
    } else {
        ("blk_read_time", "blk_write_time")
    };
    format!(
        "SELECT pg_get_userbyid(s.userid)::text, d.datname::text, s.queryid::text, s.calls::float8, \
         (s.{total} / 1000)::float8, (s.{mean} / 1000)::float8, s.rows::float8, \
         (s.{read} / 1000)::float8, (s.{write} / 1000)::float8, s.query \
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
         ORDER BY s.{total} DESC LIMIT $1"
    )
}

/// One row of [`statements_sql`].
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Role that ran it.
    pub user: String,
    /// Database.
    pub datname: String,
    /// `queryid`.
    pub queryid: String,
    /// Calls.
    pub calls: f64,
    /// Total execution seconds.
    pub total_seconds: f64,
    /// Mean execution seconds.
    pub mean_seconds: f64,
    /// Rows returned or affected.
    pub rows: f64,
    /// Seconds reading blocks (needs `track_io_timing`).
    pub read_seconds: f64,
    /// Seconds writing blocks.
    pub write_seconds: f64,
    /// Normalized query text (may be empty without privilege to see it).
    pub query: String,
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

impl Statement {
    /// Reads one row.
    pub fn from_row(row: &Row) -> Statement {
        Statement {
            user: s(row, 0),
            datname: s(row, 1),
            queryid: s(row, 2),
            calls: f(row, 3),
            total_seconds: f(row, 4),
            mean_seconds: f(row, 5),
            rows: f(row, 6),
            read_seconds: f(row, 7),
            write_seconds: f(row, 8),
            query: s(row, 9),
        }
    }

    /// The postgres_exporter samples of the statement.
    pub fn samples(&self, now: i64, out: &mut Vec<Sample>) {
        let labels = [
            ("user", self.user.as_str()),
            ("datname", self.datname.as_str()),
            ("queryid", self.queryid.as_str()),
        ];
        out.push(Sample::counter(
            "pg_stat_statements_calls_total",
            &labels,
            self.calls,
            now,
        ));
        out.push(Sample::counter(
            "pg_stat_statements_seconds_total",
            &labels,
            self.total_seconds,
            now,
        ));
        out.push(Sample::gauge(
            "pg_stat_statements_mean_seconds",
            &labels,
            self.mean_seconds,
            now,
        ));
        out.push(Sample::counter(
            "pg_stat_statements_rows_total",
            &labels,
            self.rows,
            now,
        ));
        out.push(Sample::counter(
            "pg_stat_statements_block_read_seconds_total",
            &labels,
            self.read_seconds,
            now,
        ));
        out.push(Sample::counter(
            "pg_stat_statements_block_write_seconds_total",
            &labels,
            self.write_seconds,
            now,
        ));
    }
}

/// Ships each statement's text once per agent run.
pub struct QueryLog {
    sink: OtlpSink,
    resource: Resource,
    shipped: HashSet<(String, String)>,
}

impl QueryLog {
    /// Query texts go to `sink` with resource `service.name=postgresql`, `host.name`.
    pub fn new(sink: OtlpSink, host_name: &str) -> QueryLog {
        let resource = Resource {
            attributes: vec![kv("service.name", "postgresql"), kv("host.name", host_name)],
            ..Default::default()
        };
        QueryLog {
            sink,
            resource,
            shipped: HashSet::new(),
        }
    }

    /// Ships the statements not shipped before.
    pub async fn ship(&mut self, statements: &[Statement], now_ns: u64) {
        let mut records = Vec::new();
        let mut keys = Vec::new();
        for st in statements {
            let key = (st.datname.clone(), st.queryid.clone());
            if st.query.is_empty() || self.shipped.contains(&key) {
                continue;
            }
            records.push(LogRecord {
                time_unix_nano: now_ns,
                observed_time_unix_nano: now_ns,
                severity_number: 9,
                severity_text: "INFO".to_string(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(st.query.clone())),
                }),
                attributes: vec![
                    kv("event.name", "pg_stat_statements.query"),
                    kv("db.query.id", &st.queryid),
                    kv("db.namespace", &st.datname),
                    kv("db.user", &st.user),
                ],
                ..Default::default()
            });
            keys.push(key);
        }
        if records.is_empty() {
            return;
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "didban-agent/postgres".into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match self.sink.send(Signal::Logs, request.encode_to_vec()).await {
            Ok(()) => {
                if self.shipped.len() + keys.len() > MAX_SHIPPED {
                    self.shipped.clear();
                }
                self.shipped.extend(keys);
            }
            Err(e) => tracing::warn!(error = %e, "postgres: query texts not buffered; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_columns_follow_the_server_version() {
        assert!(statements_sql(120005).contains("s.total_time / 1000"));
        assert!(statements_sql(120005).contains("s.blk_read_time"));
        assert!(statements_sql(150004).contains("s.total_exec_time"));
        assert!(statements_sql(150004).contains("ORDER BY s.total_exec_time DESC"));
        assert!(statements_sql(170000).contains("s.shared_blk_read_time"));
    }
}
