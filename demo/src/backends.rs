//! What `didban-agent` would send from the shop's hosts: host metrics ([`super::hosts`]),
//! postgres_exporter-named PostgreSQL metrics (primary and replica), redis_exporter-named
//! Redis metrics and Celery queue lengths. Counters only go up; the database and cache
//! counters follow the [`Activity`] of the traced requests.
//!
//! Samples carry an `instance` label naming the host; the sender turns it into the
//! agent's resource (`service.name=didban-agent`, `service.instance.id`, `host.name`).

use didban_agent::collectors::postgres::statements::catalogue_text;
use didban_agent::model::Sample;

use super::catalog::{self, query_id, DB_HOST, DB_REPLICA, QUERIES, QUEUES, REDIS_HOST};
use super::hosts::{sample, Hosts};
use super::node::GIB;
use super::rng::Rng;
use super::trace::Activity;

/// The agents' simulation state.
pub struct Backends {
    hosts: Hosts,
    last_t: f64,
    last_act: Activity,
    pg: [f64; 14],
    redis: [f64; 7],
    redis_mem: f64,
    db_size: f64,
}

impl Backends {
    /// Counters starting at plausible values for hosts booted a few days before `start_ms`.
    pub fn new(rng: &mut Rng, start_ms: f64) -> Backends {
        Backends {
            hosts: Hosts::new(rng, start_ms),
            last_t: start_ms,
            last_act: Activity::new(),
            pg: [0.0; 14],
            redis: [0.0; 7],
            redis_mem: 1.35 * GIB,
            db_size: 42.0 * GIB,
        }
    }

    /// All samples at `t_ms`, given the cumulative activity, traffic `load` (≈1) and
    /// Celery queue lengths.
    pub fn collect(
        &mut self,
        rng: &mut Rng,
        t_ms: f64,
        act: &Activity,
        load: f64,
        queues: [f64; 3],
        out: &mut Vec<Sample>,
    ) {
        let dt = ((t_ms - self.last_t) / 1000.0).max(0.0);
        self.last_t = t_ms;
        let t = t_ms as i64;
        self.hosts.collect(rng, dt, load, self.db_size, t, out);
        self.postgres(rng, act, dt, t, out);
        self.replica(rng, t, out);
        self.redis(rng, act, dt, t, queues, out);
        probes(rng, t, out);
        self.last_act = act.clone();
    }

    fn postgres(&mut self, rng: &mut Rng, act: &Activity, dt: f64, t: i64, out: &mut Vec<Sample>) {
        let calls: f64 = act.query_calls.iter().sum::<f64>() - self.last_act.query_calls.iter().sum::<f64>();
        let rows: f64 = act.query_rows.iter().sum::<f64>() - self.last_act.query_rows.iter().sum::<f64>();
        // Columns as in the agent: xact_commit, xact_rollback, blks_read, blks_hit,
        // tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted, conflicts,
        // temp_files, temp_bytes, deadlocks, blk_read_time, blk_write_time.
        let background = dt * 2.0;
        let adds = [
            calls * 0.55 + background,
            calls * 0.004,
            (calls * 0.7 + background) * rng.range(0.5, 1.5),
            (calls + background) * rng.range(180.0, 240.0),
            rows * 40.0 + background * 100.0,
            rows + background * 10.0,
            (act.query_calls[catalog::q::ORDER_INSERT] - self.last_act.query_calls[catalog::q::ORDER_INSERT])
                * 4.0
                + (act.query_calls[catalog::q::CART_INSERT]
                    - self.last_act.query_calls[catalog::q::CART_INSERT]),
            (act.query_calls[catalog::q::STOCK_UPDATE] - self.last_act.query_calls[catalog::q::STOCK_UPDATE])
                + dt * 0.2,
            dt * 0.05,
            0.0,
        ];
        for (k, a) in adds.iter().enumerate() {
            self.pg[k] += a;
        }
        let report_calls =
            act.query_calls[catalog::q::SALES_REPORT] - self.last_act.query_calls[catalog::q::SALES_REPORT];
        self.pg[10] += report_calls;
        self.pg[11] += report_calls * 48.0 * 1024.0 * 1024.0;
        self.pg[12] += 0.0;
        self.pg[13] += calls * 0.02;
        self.db_size += dt * 900.0 * rng.range(0.5, 1.5);
        let columns = [
            "xact_commit",
            "xact_rollback",
            "blks_read",
            "blks_hit",
            "tup_returned",
            "tup_fetched",
            "tup_inserted",
            "tup_updated",
            "tup_deleted",
            "conflicts",
            "temp_files",
            "temp_bytes",
            "deadlocks",
            "blk_read_time",
        ];
        for (datid, datname, scale) in [("16384", "shop", 1.0), ("5", "postgres", 0.001)] {
            let labels = [("datid", datid), ("datname", datname)];
            for (k, col) in columns.iter().enumerate() {
                out.push(sample(
                    DB_HOST,
                    &format!("pg_stat_database_{col}"),
                    &labels,
                    (self.pg[k] * scale).floor(),
                    t,
                    true,
                ));
            }
            out.push(sample(
                DB_HOST,
                "pg_stat_database_blk_write_time",
                &labels,
                self.pg[13] * 0.4 * scale,
                t,
                true,
            ));
            let backends = if datname == "shop" {
                38.0 + rng.range(-4.0, 6.0)
            } else {
                1.0
            };
            out.push(sample(
                DB_HOST,
                "pg_stat_database_numbackends",
                &labels,
                backends.round(),
                t,
                false,
            ));
            let active = if datname == "shop" {
                rng.poisson(3.0) as f64 + 1.0
            } else {
                0.0
            };
            let states = [
                ("active", active, 0.4f64),
                ("idle", (backends - active).max(0.0).round(), 0.0),
                (
                    "idle in transaction",
                    if datname == "shop" {
                        rng.poisson(0.4) as f64
                    } else {
                        0.0
                    },
                    1.5,
                ),
                ("idle in transaction (aborted)", 0.0, 0.0),
                ("fastpath function call", 0.0, 0.0),
                ("disabled", 0.0, 0.0),
            ];
            for (state, n, tx) in states {
                let labels = [("datname", datname), ("state", state)];
                out.push(sample(DB_HOST, "pg_stat_activity_count", &labels, n, t, false));
                let age = if n > 0.0 {
                    rng.lognormal(tx.max(0.01), 0.8)
                } else {
                    0.0
                };
                out.push(sample(
                    DB_HOST,
                    "pg_stat_activity_max_tx_duration",
                    &labels,
                    age,
                    t,
                    false,
                ));
                out.push(sample(
                    DB_HOST,
                    "pg_stat_activity_max_query_duration",
                    &labels,
                    age * 0.8,
                    t,
                    false,
                ));
            }
            for mode in [
                "accesssharelock",
                "rowsharelock",
                "rowexclusivelock",
                "shareupdateexclusivelock",
                "sharelock",
                "sharerowexclusivelock",
                "exclusivelock",
                "accessexclusivelock",
                "sireadlock",
            ] {
                let n = match (datname, mode) {
                    ("shop", "accesssharelock") => rng.poisson(12.0) as f64,
                    ("shop", "rowexclusivelock") => rng.poisson(2.0) as f64,
                    ("shop", "exclusivelock") => rng.poisson(0.5) as f64,
                    _ => 0.0,
                };
                out.push(sample(
                    DB_HOST,
                    "pg_locks_count",
                    &[("datname", datname), ("mode", mode)],
                    n,
                    t,
                    false,
                ));
            }
            let size = if datname == "shop" {
                self.db_size
            } else {
                7.6 * 1024.0 * 1024.0
            };
            out.push(sample(
                DB_HOST,
                "pg_database_size_bytes",
                &[("datname", datname)],
                size.round(),
                t,
                false,
            ));
        }
        out.push(sample(DB_HOST, "pg_up", &[], 1.0, t, false));
        out.push(sample(
            DB_HOST,
            "pg_static",
            &[("server_version_num", "160004")],
            1.0,
            t,
            false,
        ));
        out.push(sample(
            DB_HOST,
            "pg_settings_max_connections",
            &[],
            200.0,
            t,
            false,
        ));
        out.push(sample(
            DB_HOST,
            "pg_settings_superuser_reserved_connections",
            &[],
            3.0,
            t,
            false,
        ));
        out.push(sample(DB_HOST, "pg_replication_is_replica", &[], 0.0, t, false));
        out.push(sample(DB_HOST, "pg_replication_lag_seconds", &[], 0.0, t, false));
        out.push(sample(
            DB_HOST,
            "pg_stat_replication_pg_wal_lsn_diff",
            &[
                ("application_name", DB_REPLICA),
                ("client_addr", "10.0.2.12"),
                ("state", "streaming"),
            ],
            rng.lognormal(40_000.0, 1.0).round(),
            t,
            false,
        ));
        for (i, qy) in QUERIES.iter().enumerate() {
            let id = query_id(i);
            let labels = [("user", "shop"), ("datname", "shop"), ("queryid", id.as_str())];
            let calls = act.query_calls[i];
            let secs = act.query_seconds[i];
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_calls_total",
                &labels,
                calls,
                t,
                true,
            ));
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_seconds_total",
                &labels,
                secs,
                t,
                true,
            ));
            let mean = if calls > 0.0 {
                secs / calls
            } else {
                qy.median_ms / 1000.0
            };
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_mean_seconds",
                &labels,
                mean,
                t,
                false,
            ));
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_rows_total",
                &labels,
                act.query_rows[i],
                t,
                true,
            ));
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_block_read_seconds_total",
                &labels,
                secs * 0.03,
                t,
                true,
            ));
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_block_write_seconds_total",
                &labels,
                secs * 0.005,
                t,
                true,
            ));
            // The statement catalogue, as the agent publishes it every collection.
            let text = catalogue_text(qy.text);
            out.push(sample(
                DB_HOST,
                "pg_stat_statements_query_info",
                &[
                    ("datname", "shop"),
                    ("queryid", id.as_str()),
                    ("query", text.as_str()),
                ],
                1.0,
                t,
                false,
            ));
        }
    }

    fn replica(&mut self, rng: &mut Rng, t: i64, out: &mut Vec<Sample>) {
        let lag = if rng.chance(0.03) {
            rng.range(4.0, 15.0)
        } else {
            rng.lognormal(0.25, 0.6)
        };
        out.push(sample(DB_REPLICA, "pg_up", &[], 1.0, t, false));
        out.push(sample(
            DB_REPLICA,
            "pg_static",
            &[("server_version_num", "160004")],
            1.0,
            t,
            false,
        ));
        out.push(sample(
            DB_REPLICA,
            "pg_settings_max_connections",
            &[],
            200.0,
            t,
            false,
        ));
        out.push(sample(
            DB_REPLICA,
            "pg_replication_is_replica",
            &[],
            1.0,
            t,
            false,
        ));
        out.push(sample(
            DB_REPLICA,
            "pg_replication_lag_seconds",
            &[],
            lag,
            t,
            false,
        ));
        out.push(sample(
            DB_REPLICA,
            "pg_database_size_bytes",
            &[("datname", "shop")],
            self.db_size.round(),
            t,
            false,
        ));
        for (state, n) in [("active", 1.0), ("idle", rng.poisson(4.0) as f64)] {
            out.push(sample(
                DB_REPLICA,
                "pg_stat_activity_count",
                &[("datname", "shop"), ("state", state)],
                n,
                t,
                false,
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn redis(
        &mut self,
        rng: &mut Rng,
        act: &Activity,
        dt: f64,
        t: i64,
        queues: [f64; 3],
        out: &mut Vec<Sample>,
    ) {
        let h = REDIS_HOST;
        // Commands also come from Celery (BRPOP polling, results) and session reads.
        let cmds = act.redis_commands - self.last_act.redis_commands + dt * rng.range(25.0, 35.0);
        let hits = act.redis_hits - self.last_act.redis_hits + dt * rng.range(3.0, 5.0);
        let misses = act.redis_misses - self.last_act.redis_misses + dt * rng.range(0.2, 0.4);
        let adds = [
            cmds,
            dt * rng.range(0.05, 0.2),
            0.0,
            hits,
            misses,
            dt * rng.range(0.5, 1.5),
            cmds * 90.0,
        ];
        for (k, a) in adds.iter().enumerate() {
            self.redis[k] += a;
        }
        self.redis_mem = (self.redis_mem + dt * rng.range(-2_000.0, 3_000.0)).clamp(1.1 * GIB, 1.6 * GIB);
        let counters = [
            ("redis_commands_processed_total", self.redis[0]),
            ("redis_connections_received_total", self.redis[1] + 5_000.0),
            ("redis_rejected_connections_total", self.redis[2]),
            ("redis_keyspace_hits_total", self.redis[3]),
            ("redis_keyspace_misses_total", self.redis[4]),
            ("redis_evicted_keys_total", 0.0),
            ("redis_expired_keys_total", self.redis[5]),
            ("redis_net_input_bytes_total", self.redis[6]),
            ("redis_net_output_bytes_total", self.redis[6] * 2.4),
        ];
        for (name, v) in counters {
            out.push(sample(h, name, &[], v.floor(), t, true));
        }
        let gauges = [
            ("redis_up", 1.0),
            ("redis_memory_used_bytes", self.redis_mem.round()),
            ("redis_memory_used_rss_bytes", (self.redis_mem * 1.12).round()),
            ("redis_memory_used_peak_bytes", 1.62 * GIB),
            ("redis_memory_max_bytes", 2.0 * GIB),
            ("redis_mem_fragmentation_ratio", 1.12),
            ("redis_connected_clients", (42.0 + rng.range(-3.0, 3.0)).round()),
            ("redis_blocked_clients", 4.0),
            (
                "redis_uptime_in_seconds",
                (t as f64 / 1000.0 - self.hosts.boot_s(REDIS_HOST)).round(),
            ),
            ("redis_connected_slaves", 0.0),
            ("redis_aof_enabled", 0.0),
            ("redis_rdb_last_bgsave_status", 1.0),
        ];
        for (name, v) in gauges {
            out.push(sample(h, name, &[], v, t, false));
        }
        out.push(sample(
            h,
            "redis_instance_info",
            &[("role", "master"), ("redis_version", "7.2.4")],
            1.0,
            t,
            false,
        ));
        out.push(sample(
            h,
            "redis_db_keys",
            &[("db", "db0")],
            (182_000.0 + rng.range(-500.0, 500.0)).round(),
            t,
            false,
        ));
        out.push(sample(
            h,
            "redis_db_keys_expiring",
            &[("db", "db0")],
            (151_000.0 + rng.range(-500.0, 500.0)).round(),
            t,
            false,
        ));
        for (q, len) in QUEUES.iter().zip(queues) {
            out.push(sample(
                h,
                "celery_queue_length",
                &[("queue_name", q)],
                len,
                t,
                false,
            ));
        }
        out.push(sample(
            h,
            "celery_unacked_messages",
            &[],
            rng.poisson(2.0) as f64,
            t,
            false,
        ));
    }
}

/// Health checks the agent on `worker-1` runs (`[[probe]]`, blackbox_exporter names,
/// `job="blackbox"`, `instance` = the target).
fn probes(rng: &mut Rng, t: i64, out: &mut Vec<Sample>) {
    let expiry = (t / 1000 + 47 * 86_400) as f64;
    for (target, http) in [
        ("https://shop.example.com/healthz/", true),
        ("tcp://db-1:5432", false),
    ] {
        let labels = [
            (super::send::AGENT_HOST, REDIS_HOST),
            ("job", "blackbox"),
            ("instance", target),
        ];
        let push = |out: &mut Vec<Sample>, name: &str, v: f64| {
            out.push(Sample::gauge(name, &labels, v, t));
        };
        push(out, "probe_success", 1.0);
        let seconds = if http {
            rng.lognormal(0.045, 0.3)
        } else {
            rng.lognormal(0.0008, 0.3)
        };
        push(out, "probe_duration_seconds", seconds);
        if http {
            push(out, "probe_http_status_code", 200.0);
            push(out, "probe_http_content_length", 2.0);
            push(out, "probe_http_ssl", 1.0);
            push(out, "probe_ssl_earliest_cert_expiry", expiry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_never_go_down() {
        let mut rng = Rng::new(3);
        let mut b = Backends::new(&mut rng, 1_000_000.0);
        let act = Activity::new();
        let mut last: std::collections::BTreeMap<String, f64> = Default::default();
        for i in 1..30 {
            let mut out = Vec::new();
            b.collect(
                &mut rng,
                1_000_000.0 + f64::from(i) * 10_000.0,
                &act,
                1.0 + 0.3 * f64::from(i % 3),
                [1.0, 0.0, 110.0],
                &mut out,
            );
            for sm in out
                .iter()
                .filter(|sm| sm.kind == didban_agent::model::MetricKind::Counter)
            {
                let key = format!("{}{:?}", sm.name, sm.labels);
                if let Some(prev) = last.get(&key) {
                    assert!(sm.value >= *prev, "{key} went from {prev} to {}", sm.value);
                }
                last.insert(key, sm.value);
            }
        }
        assert!(last.keys().any(|k| k.starts_with("node_cpu_seconds_total")));
        assert!(last.keys().any(|k| k.starts_with("pg_stat_database_blks_hit")));
    }
}
