//! Redis `INFO` fields as samples named like redis_exporter.

use crate::model::{MetricKind, Sample};

/// `INFO` field → (redis_exporter name, kind).
const INFO_METRICS: &[(&str, &str, MetricKind)] = &[
    ("used_memory", "redis_memory_used_bytes", MetricKind::Gauge),
    (
        "used_memory_rss",
        "redis_memory_used_rss_bytes",
        MetricKind::Gauge,
    ),
    (
        "used_memory_peak",
        "redis_memory_used_peak_bytes",
        MetricKind::Gauge,
    ),
    ("maxmemory", "redis_memory_max_bytes", MetricKind::Gauge),
    (
        "mem_fragmentation_ratio",
        "redis_mem_fragmentation_ratio",
        MetricKind::Gauge,
    ),
    ("connected_clients", "redis_connected_clients", MetricKind::Gauge),
    ("blocked_clients", "redis_blocked_clients", MetricKind::Gauge),
    (
        "total_commands_processed",
        "redis_commands_processed_total",
        MetricKind::Counter,
    ),
    (
        "total_connections_received",
        "redis_connections_received_total",
        MetricKind::Counter,
    ),
    (
        "rejected_connections",
        "redis_rejected_connections_total",
        MetricKind::Counter,
    ),
    ("keyspace_hits", "redis_keyspace_hits_total", MetricKind::Counter),
    (
        "keyspace_misses",
        "redis_keyspace_misses_total",
        MetricKind::Counter,
    ),
    ("evicted_keys", "redis_evicted_keys_total", MetricKind::Counter),
    ("expired_keys", "redis_expired_keys_total", MetricKind::Counter),
    (
        "total_net_input_bytes",
        "redis_net_input_bytes_total",
        MetricKind::Counter,
    ),
    (
        "total_net_output_bytes",
        "redis_net_output_bytes_total",
        MetricKind::Counter,
    ),
    ("uptime_in_seconds", "redis_uptime_in_seconds", MetricKind::Gauge),
    (
        "rdb_changes_since_last_save",
        "redis_rdb_changes_since_last_save",
        MetricKind::Gauge,
    ),
    (
        "rdb_last_save_time",
        "redis_rdb_last_save_timestamp_seconds",
        MetricKind::Gauge,
    ),
    ("aof_enabled", "redis_aof_enabled", MetricKind::Gauge),
    ("connected_slaves", "redis_connected_slaves", MetricKind::Gauge),
    (
        "master_repl_offset",
        "redis_master_repl_offset",
        MetricKind::Gauge,
    ),
    (
        "master_last_io_seconds_ago",
        "redis_master_last_io_seconds_ago",
        MetricKind::Gauge,
    ),
];

/// Parses `INFO` output into samples.
pub fn info_samples(info: &str, now: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut role = String::new();
    let mut version = String::new();
    for line in info.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        match key {
            "role" => role = value.to_string(),
            "redis_version" => version = value.to_string(),
            "rdb_last_bgsave_status" => {
                out.push(Sample::gauge(
                    "redis_rdb_last_bgsave_status",
                    &[],
                    f64::from(u8::from(value == "ok")),
                    now,
                ));
            }
            "master_link_status" => {
                out.push(Sample::gauge(
                    "redis_master_link_up",
                    &[],
                    f64::from(u8::from(value == "up")),
                    now,
                ));
            }
            _ => {}
        }
        if let Some(db) = key
            .strip_prefix("db")
            .filter(|d| d.chars().all(|c| c.is_ascii_digit()))
        {
            // db0:keys=1,expires=0,avg_ttl=0
            let db = format!("db{db}");
            for part in value.split(',') {
                let Some((k, v)) = part.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse::<f64>() else { continue };
                match k {
                    "keys" => out.push(Sample::gauge("redis_db_keys", &[("db", &db)], v, now)),
                    "expires" => out.push(Sample::gauge("redis_db_keys_expiring", &[("db", &db)], v, now)),
                    "avg_ttl" => out.push(Sample::gauge(
                        "redis_db_avg_ttl_seconds",
                        &[("db", &db)],
                        v / 1000.0,
                        now,
                    )),
                    _ => {}
                }
            }
            continue;
        }
        for (field, name, kind) in INFO_METRICS {
            if key == *field {
                if let Ok(v) = value.parse::<f64>() {
                    out.push(Sample::new(name, &[], *kind, v, now));
                }
            }
        }
    }
    if !role.is_empty() {
        out.push(Sample::gauge(
            "redis_instance_info",
            &[("role", &role), ("redis_version", &version)],
            1.0,
            now,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn info_parsing() {
        let s = info_samples(
            "# Server\r\nredis_version:7.0.15\r\nrole:master\r\nused_memory:1000\r\nkeyspace_hits:5\r\n\
             rdb_last_bgsave_status:ok\r\ndb0:keys=3,expires=1,avg_ttl=2000\r\nbogus\r\n",
            1,
        );
        let get = |n: &str| s.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("redis_memory_used_bytes").value, 1000.0);
        assert_eq!(get("redis_keyspace_hits_total").kind, MetricKind::Counter);
        assert_eq!(get("redis_db_keys").label("db"), Some("db0"));
        assert_eq!(get("redis_db_keys_expiring").value, 1.0);
        assert_eq!(get("redis_db_avg_ttl_seconds").value, 2.0);
        assert_eq!(get("redis_rdb_last_bgsave_status").value, 1.0);
        assert_eq!(get("redis_instance_info").label("role"), Some("master"));
    }
}
