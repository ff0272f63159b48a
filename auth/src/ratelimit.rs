//! Brute-force protection: sign-in attempts counted per client address in a window; past
//! the limit further attempts are refused without checking the password.
//!
//! An attempt is reserved *before* its password is verified ([`RateLimiter::begin`]): the
//! attempts in flight count against the limit together with the failures, so a concurrent
//! burst of wrong passwords gets at most `limit` Argon2 verifications and the rest are
//! refused at once. An attempt ends as a failure, a success (which forgets the failures), or
//! — dropped without either, as when the verification was refused for lack of a slot — as
//! nothing at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most addresses tracked; beyond, the oldest records are dropped.
const MAX_TRACKED: usize = 10_000;

/// Seconds to wait when only attempts in flight (not failures) fill the limit: they end
/// within a verification's time.
const IN_FLIGHT_WAIT_S: i64 = 1;

/// One address's attempts.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    /// Failures in the window.
    failures: u32,
    /// When the window started (the first failure).
    since: i64,
    /// Attempts reserved and not ended yet.
    in_flight: u32,
}

/// Sign-in attempts per address.
pub struct RateLimiter {
    limit: u32,
    window_ms: i64,
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl RateLimiter {
    /// Allows `limit` failures per `window_ms` (counted from the first failure), attempts in
    /// flight included.
    pub fn new(limit: u32, window_ms: i64) -> RateLimiter {
        RateLimiter {
            limit,
            window_ms,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves an attempt of `ip`, or `Err(seconds to wait)` when its failures and attempts
    /// in flight already reach the limit. End the attempt with [`Attempt::fail`] or
    /// [`Attempt::succeed`]; dropping it otherwise releases it without counting.
    pub fn begin(&self, ip: IpAddr, now_ms: i64) -> Result<Attempt<'_>, i64> {
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let window = self.window_ms;
            map.retain(|_, r| r.in_flight > 0 || r.since + window > now_ms);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let record = map.entry(ip).or_default();
        if record.failures > 0 && record.since + self.window_ms <= now_ms {
            record.failures = 0;
        }
        if record.failures.saturating_add(record.in_flight) >= self.limit {
            let end = record.since + self.window_ms;
            let wait = if record.failures >= self.limit && end > now_ms {
                (end - now_ms + 999) / 1000
            } else {
                IN_FLIGHT_WAIT_S
            };
            return Err(wait);
        }
        record.in_flight += 1;
        Ok(Attempt {
            limiter: self,
            ip,
            ended: false,
        })
    }

    /// Ends one attempt of `ip`, counting a failure at `failed_at` when given.
    fn end(&self, ip: IpAddr, failed_at: Option<i64>, success: bool) {
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = map.get_mut(&ip) else {
            return;
        };
        record.in_flight = record.in_flight.saturating_sub(1);
        if success {
            record.failures = 0;
        }
        if let Some(now) = failed_at {
            if record.failures == 0 || record.since + self.window_ms <= now {
                record.failures = 0;
                record.since = now;
            }
            record.failures += 1;
        }
        if record.failures == 0 && record.in_flight == 0 {
            map.remove(&ip);
        }
    }
}

/// A reserved sign-in attempt (see [`RateLimiter::begin`]); released on drop.
pub struct Attempt<'a> {
    limiter: &'a RateLimiter,
    ip: IpAddr,
    ended: bool,
}

impl Attempt<'_> {
    /// The password was wrong: counts a failure at `now_ms`.
    pub fn fail(mut self, now_ms: i64) {
        self.ended = true;
        self.limiter.end(self.ip, Some(now_ms), false);
    }

    /// The password was right: forgets the address's failures.
    pub fn succeed(mut self) {
        self.ended = true;
        self.limiter.end(self.ip, None, true);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.limiter.end(self.ip, None, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let l = RateLimiter::new(3, 1000);
        for t in 0..3 {
            let Ok(a) = l.begin(ip, t) else {
                panic!("attempt {t} is within the limit");
            };
            a.fail(t);
        }
        assert_eq!(l.begin(ip, 10).err(), Some(1));
        assert!(l.begin(other, 10).is_ok());
        let a = l.begin(ip, 1000);
        assert!(a.is_ok(), "the window is over");
        drop(a);
        let Ok(a) = l.begin(ip, 1001) else {
            panic!("a new window");
        };
        a.fail(1001);
        let Ok(a) = l.begin(ip, 1002) else {
            panic!("one failure in the new window");
        };
        a.succeed();
        assert!(l.records.lock().is_ok_and(|m| m.is_empty()), "forgotten");
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let ip: IpAddr = [10, 0, 0, 1].into();
        let l = RateLimiter::new(3, 60_000);
        let held: Vec<Attempt<'_>> = (0..10).filter_map(|_| l.begin(ip, 0).ok()).collect();
        assert_eq!(held.len(), 3, "only the limit is reserved at once");
        assert_eq!(l.begin(ip, 0).err(), Some(IN_FLIGHT_WAIT_S));
        drop(held);
        // Released without an answer (the verification was busy): nothing counted.
        let held: Vec<Attempt<'_>> = (0..10).filter_map(|_| l.begin(ip, 5).ok()).collect();
        assert_eq!(held.len(), 3);
        for a in held {
            a.fail(5);
        }
        assert_eq!(l.begin(ip, 10).err(), Some(60));
    }
}
