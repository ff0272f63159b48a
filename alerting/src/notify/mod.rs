//! The notification pipeline: alerts from the rule engine are routed ([`route`]), grouped
//! and flushed ([`dispatch`]), silenced ([`silence`]), inhibited ([`inhibit`]),
//! deduplicated against the notification log ([`log`]) and sent to receivers; every delivery
//! is counted ([`metrics`]) and receivers can be tested on demand ([`test_send`]).

mod alert;
pub mod config;
pub mod dispatch;
pub mod forward;
mod ha_sync;
pub mod inhibit;
pub mod log;
pub mod metrics;
pub mod reread;
pub mod route;
pub mod silence;
pub mod test_send;

use std::io::Write;
use std::path::Path;

pub use alert::{Alert, AlertSink};
pub use config::NotifyConfig;
pub use dispatch::{Notifier, RetryPolicy};

/// A time in ms as Go's JSON encoding of `time.Time` prints it (RFC 3339 with the
/// fraction trimmed of trailing zeros, `Z` for UTC).
pub fn rfc3339(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return "0001-01-01T00:00:00Z".into();
    };
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses an RFC 3339 time to ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so a crash leaves
/// the old or the new content, never a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;
