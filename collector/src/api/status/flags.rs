//! The effective configuration as flag-like `key → value` strings for
//! `/api/v1/status/flags`: every key of `docs/configuration.md` that is not a secret, named
//! as in the TOML file (`storage.retention_time`), with durations and sizes written the way
//! the file accepts them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::auth::AuthMode;
use crate::config::Config;

/// The configuration as sorted `key → value` strings. Leaves out what could be a secret or
/// is not a setting (SMTP settings, receivers, routes, the bootstrap admin).
pub fn flags(c: &Config) -> BTreeMap<String, String> {
    let mut f = Flags::default();
    f.put("data_dir", c.data_dir.display());
    f.put("http_addr", c.http_addr);
    f.put("otlp_grpc_addr", c.otlp_grpc_addr);
    f.put("otlp_http_addr", c.otlp_http_addr);
    f.put("self_scrape_interval", duration(c.self_scrape_interval));
    f.put("config_file", opt_path(c.source.as_deref()));
    storage(&mut f, c);
    limits(&mut f, c);
    query(&mut f, c);
    traces_logs(&mut f, c);
    f.put("host_metrics.enabled", c.host_metrics.enabled);
    f.put("host_metrics.interval", duration(c.host_metrics.interval));
    alerting(&mut f, c);
    auth(&mut f, c);
    f.put("ui.dashboards_dir", opt_path(c.ui.dashboards_dir.as_deref()));
    listen_tls(&mut f, c);
    f.0
}

#[derive(Default)]
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn put(&mut self, key: &str, value: impl std::fmt::Display) {
        self.0.insert(key.to_string(), value.to_string());
    }
}

fn storage(f: &mut Flags, c: &Config) {
    let s = &c.storage;
    let fsync = match s.fsync {
        didban_store::FsyncMode::Batch => "batch",
        didban_store::FsyncMode::Interval => "interval",
        didban_store::FsyncMode::Off => "off",
    };
    f.put("storage.fsync", fsync);
    f.put("storage.fsync_interval", duration(s.fsync_interval));
    f.put("storage.wal_segment_size", bytes(s.wal_segment_bytes));
    f.put("storage.block_duration", duration(s.block_duration));
    f.put("storage.out_of_order_window", duration(s.out_of_order_window));
    f.put("storage.max_sample_age", duration(s.max_sample_age));
    f.put("storage.retention_time", duration(s.retention_time));
    f.put("storage.retention_size", bytes(s.retention_bytes));
    f.put("storage.downsample_5m_after", duration(s.downsample.after_5m));
    f.put("storage.downsample_1h_after", duration(s.downsample.after_1h));
    f.put("storage.retention_time_5m", duration(s.downsample.retention_5m));
    f.put("storage.retention_time_1h", duration(s.downsample.retention_1h));
    f.put("storage.memory_limit", bytes(s.memory_limit_bytes));
    f.put("storage.head_memory_limit", bytes(s.head_memory_bytes));
    f.put("storage.block_index_cache_size", bytes(s.block_index_cache_bytes));
    f.put("storage.maintenance_interval", duration(s.maintenance_interval));
    f.put("storage.max_exemplars", s.max_exemplars);
}

fn limits(f: &mut Flags, c: &Config) {
    let l = &c.limits;
    f.put("limits.max_request_body", bytes(l.max_body_bytes as u64));
    f.put("limits.max_future", duration(l.max_future));
    f.put("limits.max_labels_per_series", l.series.max_labels_per_series);
    f.put("limits.max_label_name_length", l.series.max_label_name_bytes);
    f.put("limits.max_label_value_length", l.series.max_label_value_bytes);
    f.put("limits.max_series", l.series.max_series);
    f.put("limits.max_series_per_metric", l.series.max_series_per_metric);
}

fn query(f: &mut Flags, c: &Config) {
    let q = &c.query;
    f.put("query.lookback_delta", duration(q.lookback_delta));
    f.put("query.timeout", duration(q.timeout));
    f.put("query.max_samples", q.max_samples);
    f.put("query.max_depth", q.max_depth);
    f.put("query.max_concurrent", q.max_concurrent);
    f.put("query.max_queued", q.max_queued);
}

fn traces_logs(f: &mut Flags, c: &Config) {
    let t = &c.traces;
    f.put("traces.block_duration", duration(t.block_duration));
    f.put("traces.retention_time", duration(t.retention_time));
    f.put("traces.retention_size", bytes(t.retention_bytes));
    f.put("traces.head_memory_limit", bytes(t.head_memory_bytes));
    f.put("traces.span_metrics", t.span_metrics);
    f.put("traces.duration_histogram", t.duration_histogram.as_str());
    let buckets: Vec<String> = t.duration_buckets.iter().map(|b| b.to_string()).collect();
    f.put("traces.duration_buckets", format!("[{}]", buckets.join(", ")));
    let l = &c.logs;
    f.put("logs.commit_interval", duration(l.commit_interval));
    f.put("logs.retention_days", l.retention_days);
    f.put("logs.retention_size", bytes(l.retention_bytes));
    f.put("logs.writer_memory", bytes(l.writer_memory_bytes as u64));
    f.put("logs.max_pending", bytes(l.max_pending_bytes));
}

fn alerting(f: &mut Flags, c: &Config) {
    let a = &c.alerting;
    f.put("alerting.enabled", a.is_enabled());
    f.put("alerting.rules_dir", opt_path(a.rules_dir.as_deref()));
    f.put("alerting.packs_dir", opt_path(a.packs_dir.as_deref()));
    f.put("alerting.packs_enabled", a.packs_enabled.unwrap_or(true));
    f.put("alerting.disabled_packs", a.disabled_packs.join(","));
    f.put("alerting.disabled_rules", a.disabled_rules.join(","));
    f.put(
        "alerting.evaluation_interval",
        a.evaluation_interval.as_deref().unwrap_or("1m"),
    );
    f.put("alerting.time_scale", a.time_scale.unwrap_or(1.0));
    f.put("alerting.external_url", a.external_url.as_deref().unwrap_or(""));
    f.put("alerting.resend_delay", a.resend_delay.as_deref().unwrap_or("1m"));
    f.put("alerting.alertmanager_urls", a.alertmanager_urls.join(","));
    f.put("alerting.config_file", opt_path(a.config_file.as_deref()));
}

fn auth(f: &mut Flags, c: &Config) {
    let a = &c.auth;
    let enabled = match a.enabled {
        AuthMode::On => "true",
        AuthMode::Off => "false",
        AuthMode::Auto => "auto",
    };
    f.put("auth.enabled", enabled);
    f.put("auth.allow_anonymous", a.allow_anonymous);
    let anonymous = match a.anonymous_role {
        None => "default",
        Some(None) => "none",
        Some(Some(role)) => role.as_str(),
    };
    f.put("auth.anonymous_role", anonymous);
    f.put("auth.session_ttl", duration(a.session_ttl));
    f.put("auth.secure_cookies", a.secure_cookies);
    let proxies: Vec<String> = a.trusted_proxies.iter().map(|p| p.to_string()).collect();
    f.put("auth.trusted_proxies", proxies.join(","));
    f.put("auth.public_metrics", a.public_metrics);
}

fn listen_tls(f: &mut Flags, c: &Config) {
    let l = &c.listen;
    f.put("listen.max_connections", l.max_connections);
    f.put("listen.header_read_timeout", duration(l.header_read_timeout));
    f.put("listen.request_body_timeout", duration(l.request_body_timeout));
    f.put("listen.idle_timeout", duration(l.idle_timeout));
    let t = &c.tls;
    f.put("tls.cert_file", opt_path(t.cert_file.as_deref()));
    f.put("tls.key_file", opt_path(t.key_file.as_deref()));
    f.put("tls.client_ca_file", opt_path(t.client_ca_file.as_deref()));
    let names = |list: &[crate::config::listen::ListenerName]| -> String {
        list.iter().map(|n| n.key()).collect::<Vec<_>>().join(",")
    };
    f.put("tls.listeners", names(&t.listeners));
    f.put("tls.client_auth", names(&t.client_auth));
    f.put("tls.reload_interval", duration(t.reload_interval));
}

fn opt_path(p: Option<&std::path::Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

/// A duration as Prometheus writes one (`15d`, `1h30m`, `250ms`, `0s`): the units
/// `y` (365 days) and `w` only when they divide it exactly (`90d`, not `12w6d`), then `d`,
/// `h`, `m`, `s`, `ms`, largest first.
pub fn duration(d: Duration) -> String {
    const UNITS: [(&str, u128, bool); 7] = [
        ("y", 365 * 86_400_000, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ];
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size, exact) in UNITS {
        if exact && !ms.is_multiple_of(size) {
            continue;
        }
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A byte count in the largest binary unit that divides it exactly (`10GiB`, `1536KiB`),
/// else in bytes (`1000B`); `0` stays `0`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    if n == 0 {
        return "0".to_string();
    }
    for (unit, size) in UNITS {
        if n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_prometheus() {
        assert_eq!(duration(Duration::from_secs(15 * 86_400)), "15d");
        assert_eq!(duration(Duration::from_secs(14 * 86_400)), "2w");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn bytes_in_the_largest_exact_unit() {
        assert_eq!(bytes(20 << 20), "20MiB");
        assert_eq!(bytes(1536 << 10), "1536KiB");
        assert_eq!(bytes(1000), "1000B");
        assert_eq!(bytes(0), "0");
    }

    #[test]
    fn flags_name_keys_as_the_config_file_and_keep_secrets_out() {
        let mut c = Config::default();
        c.auth.bootstrap_admin = Some(("admin".into(), "s3cret-password".into()));
        let f = flags(&c);
        assert_eq!(f.get("query.lookback_delta").map(String::as_str), Some("5m"));
        assert_eq!(f.get("storage.retention_time").map(String::as_str), Some("15d"));
        assert_eq!(
            f.get("storage.downsample_1h_after").map(String::as_str),
            Some("10d")
        );
        assert_eq!(f.get("http_addr").map(String::as_str), Some("127.0.0.1:9480"));
        assert!(f.values().all(|v| !v.contains("s3cret")));
    }
}
