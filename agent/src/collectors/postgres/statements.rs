//! Slow statements from `pg_stat_statements`: the top N by total time and the top N by mean
//! time as postgres_exporter metrics; a statement catalogue
//! `pg_stat_statements_query_info{datname, queryid, query} 1` refreshed every collection (so
//! dashboards can join the text at any time window); and the normalized query text of each
//! statement shipped once as an OTLP log record (attributes `db.query.id`, `db.namespace`,
//! `db.user`). Both stay bounded: at most 2 N statements, text at most
//! [`MAX_QUERY_TEXT_CHARS`] characters in the catalogue.

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

/// Longest statement text, in characters, the catalogue publishes as a label.
pub const MAX_QUERY_TEXT_CHARS: usize = 240;

/// The `pg_stat_statements` query for a server version: PG 12 has `total_time`/`mean_time`,
/// PG 13+ `total_exec_time`/`mean_exec_time`, PG 17+ `shared_blk_read_time`. It returns the
/// top `$1` statements by total time together with the top `$1` by mean time (at most twice
/// `$1` rows), so a rare but slow statement is seen as well as a frequent one.
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
         FROM (SELECT *, row_number() OVER (ORDER BY {total} DESC) AS by_total, \
         row_number() OVER (ORDER BY {mean} DESC) AS by_mean FROM pg_stat_statements) s \
         JOIN pg_database d ON d.oid = s.dbid \
         WHERE s.by_total <= $1 OR s.by_mean <= $1 \
         ORDER BY s.{total} DESC"
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

/// The catalogue text of a statement: whitespace runs collapsed to one space, trimmed, and cut
/// on a character boundary to at most [`MAX_QUERY_TEXT_CHARS`] characters, ending in `…` when
/// cut.
pub fn catalogue_text(query: &str) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    let mut cut = false;
    // Words are whole unless the text is over the limit; then the last one is cut.
    for word in query.split_whitespace() {
        let sep = usize::from(!out.is_empty());
        let len = word.chars().count();
        if chars + sep + len > MAX_QUERY_TEXT_CHARS {
            // Room left before the `…`; a space only when some of the word follows it.
            let room = MAX_QUERY_TEXT_CHARS - 1 - chars.min(MAX_QUERY_TEXT_CHARS - 1);
            if room > sep {
                if sep == 1 {
                    out.push(' ');
                }
                out.extend(word.chars().take(room - sep));
            }
            cut = true;
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        chars += sep + len;
    }
    if cut {
        out.push('…');
    }
    out
}

/// Appends `pg_stat_statements_query_info{datname, queryid, query} 1` for each distinct
/// `(datname, queryid)` of `statements` that has a text (the same statement run by several
/// roles is one entry), so `* on (instance, datname, queryid) group_left (query)` joins
/// exactly one text. The caller adds `instance` as on every other sample.
pub fn catalogue(statements: &[Statement], now: i64, out: &mut Vec<Sample>) {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for st in statements {
        if st.query.trim().is_empty() || !seen.insert((&st.datname, &st.queryid)) {
            continue;
        }
        let text = catalogue_text(&st.query);
        out.push(Sample::gauge(
            "pg_stat_statements_query_info",
            &[
                ("datname", st.datname.as_str()),
                ("queryid", st.queryid.as_str()),
                ("query", text.as_str()),
            ],
            1.0,
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
        assert!(statements_sql(150004).contains("ORDER BY total_exec_time DESC"));
        assert!(statements_sql(150004).contains("ORDER BY mean_exec_time DESC"));
        assert!(statements_sql(120005).contains("ORDER BY mean_time DESC"));
        assert!(statements_sql(170000).contains("s.shared_blk_read_time"));
    }

    #[test]
    fn catalogue_text_collapses_whitespace_and_cuts_on_a_char_boundary() {
        assert_eq!(
            catalogue_text("  SELECT *\n\tFROM   t\r\n WHERE id = $1 "),
            "SELECT * FROM t WHERE id = $1"
        );
        let short = "SELECT 1";
        assert_eq!(catalogue_text(short), short);
        // 300 two-byte characters: cut to 239 of them plus the ellipsis, never mid-character.
        let long = "é".repeat(300);
        let cut = catalogue_text(&long);
        assert_eq!(cut.chars().count(), MAX_QUERY_TEXT_CHARS);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
        // Words: the cut falls inside the word that does not fit, no trailing space.
        let words = "SELECT ".to_string() + &"col, ".repeat(100);
        let cut = catalogue_text(&words);
        assert!(cut.chars().count() <= MAX_QUERY_TEXT_CHARS, "{cut:?}");
        assert!(cut.chars().count() >= MAX_QUERY_TEXT_CHARS - 2, "{cut:?}");
        assert!(!cut.trim_end_matches('…').ends_with(' '), "{cut:?}");
        // Exactly the limit is not cut.
        let exact = "x".repeat(MAX_QUERY_TEXT_CHARS);
        assert_eq!(catalogue_text(&exact), exact);
    }

    fn statement(user: &str, datname: &str, queryid: &str, query: &str) -> Statement {
        Statement {
            user: user.into(),
            datname: datname.into(),
            queryid: queryid.into(),
            calls: 1.0,
            total_seconds: 1.0,
            mean_seconds: 1.0,
            rows: 1.0,
            read_seconds: 0.0,
            write_seconds: 0.0,
            query: query.into(),
        }
    }

    #[test]
    fn catalogue_has_one_entry_per_database_and_queryid() {
        let statements = [
            statement("a", "app", "1", "SELECT 1"),
            statement("b", "app", "1", "SELECT 1"),
            statement("a", "other", "1", "SELECT 1"),
            statement("a", "app", "2", ""),
        ];
        let mut out = Vec::new();
        catalogue(&statements, 5, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "pg_stat_statements_query_info");
        assert_eq!(out[0].label("datname"), Some("app"));
        assert_eq!(out[0].label("query"), Some("SELECT 1"));
        assert_eq!(out[0].label("user"), None);
        assert_eq!(out[1].label("datname"), Some("other"));
        assert_eq!(out[0].value, 1.0);
    }
}
