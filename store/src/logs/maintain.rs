//! The log store's housekeeping: retention of the day indexes in the data directory and,
//! with an object store, sealing days and the sealed days' retention (`sealed`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::day::DayIndex;
use super::error::LogError;
use super::record::day_start;
use super::LogStore;

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

impl LogStore {
    /// Applies retention by days and by size, pausing appends while days are deleted;
    /// with an object store also seals the days due and uploads them, refreshes the
    /// sealed days from the metastore, and — in the process holding the `compactor-logs`
    /// lease, or always without a metastore — deletes sealed days past `retention_days`
    /// from the bucket and collects garbage there. Call from a blocking thread.
    pub fn maintain(&self, now_unix_nano: i64) {
        self.retain_local(now_unix_nano);
        if let Err(e) = self.maintain_sealed(now_unix_nano) {
            tracing::warn!(error = %e, "sealed log days: maintenance round incomplete");
        }
    }

    /// Seals the writable days over for longer than `seal_after` (see
    /// `sealed::SealedDays`), uploads staged ones, refreshes, applies retention.
    fn maintain_sealed(&self, now: i64) -> Result<(), LogError> {
        let Some(sealed) = &self.sealed else {
            return Ok(());
        };
        let seal_after = i64::try_from(self.options.seal_after.as_nanos()).unwrap_or(i64::MAX);
        let due: Vec<String> = self
            .days
            .read()
            .keys()
            .filter(|d| {
                day_start(d).is_some_and(|s| s.saturating_add(DAY_NANOS).saturating_add(seal_after) <= now)
            })
            .cloned()
            .collect();
        if !due.is_empty() && !self.closed.load(Ordering::SeqCst) {
            let _one = self.commit_lock.lock();
            self.commit_locked(&due)?;
        }
        let uploaded = sealed.upload_staged(self.options.writer_memory_bytes, &self.fields);
        sealed.refresh()?;
        if self.options.retention_days > 0 {
            let deleted = sealed.apply_retention(|day| self.expired(day, now))?;
            self.retention_deleted.fetch_add(deleted, Ordering::Relaxed);
        }
        let collected = sealed.collect_garbage()?;
        self.gc_deleted.fetch_add(collected, Ordering::Relaxed);
        uploaded
    }

    /// Whether day `day` (`yyyy-mm-dd`) ended more than `retention_days` before `now`
    /// (with `retention_days` > 0).
    fn expired(&self, day: &str, now: i64) -> bool {
        let keep = i64::from(self.options.retention_days).saturating_mul(DAY_NANOS);
        day_start(day).is_some_and(|s| s.saturating_add(DAY_NANOS) <= now.saturating_sub(keep))
    }

    /// Retention of the writable days in the data directory, by days and by size.
    fn retain_local(&self, now_unix_nano: i64) {
        let mut doomed: Vec<String> = Vec::new();
        let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
        if self.options.retention_days > 0 {
            for d in &days {
                if self.expired(&d.day, now_unix_nano) {
                    doomed.push(d.day.clone());
                }
            }
        }
        if self.options.retention_bytes > 0 {
            let mut sizes: Vec<(String, u64)> = Vec::new();
            let mut total = 0;
            for d in &days {
                if doomed.contains(&d.day) {
                    continue;
                }
                let b = d.bytes();
                total += b;
                sizes.push((d.day.clone(), b));
            }
            // Oldest first (day names sort by date); never the newest day.
            let newest = sizes.last().map(|(d, _)| d.clone());
            for (day, b) in sizes {
                if total <= self.options.retention_bytes || Some(&day) == newest.as_ref() {
                    break;
                }
                total = total.saturating_sub(b);
                doomed.push(day);
            }
        }
        if doomed.is_empty() {
            return;
        }
        // No commit is waiting on a day and no append is half-way into one while it is deleted.
        let _one = self.commit_lock.lock();
        let _alone = self.gate.blocking_write();
        for day in doomed {
            self.delete_day(&day);
        }
    }

    fn delete_day(&self, day: &str) {
        let Some(index) = self.days.write().remove(day) else {
            return;
        };
        index.close();
        let doomed = self.dir.join(format!(".del-{day}"));
        let result = std::fs::rename(&index.dir, &doomed).and_then(|_| std::fs::remove_dir_all(&doomed));
        match result {
            Ok(()) => {
                tracing::info!(day, "log retention deleted a day index");
                self.retention_deleted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(day, error = %e, "could not delete log day index"),
        }
    }
}
