//! Brute-force protection: failed sign-ins counted per client address in a window; past
//! the limit further attempts are refused without checking the password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most addresses tracked; beyond, the oldest records are dropped.
const MAX_TRACKED: usize = 10_000;

/// Failed attempts per address.
pub struct RateLimiter {
    limit: u32,
    window_ms: i64,
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

impl RateLimiter {
    /// Allows `limit` failures per `window_ms` (counted from the first failure).
    pub fn new(limit: u32, window_ms: i64) -> RateLimiter {
        RateLimiter {
            limit,
            window_ms,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `ip` has used up its attempts.
    pub fn blocked(&self, ip: IpAddr, now_ms: i64) -> Option<i64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = map.get(&ip)?;
        let end = since + self.window_ms;
        if *count >= self.limit && end > now_ms {
            Some((end - now_ms + 999) / 1000)
        } else {
            None
        }
    }

    /// Counts a failure of `ip`.
    pub fn fail(&self, ip: IpAddr, now_ms: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            let window = self.window_ms;
            map.retain(|_, (_, since)| *since + window > now_ms);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((0, now_ms));
        if entry.1 + self.window_ms <= now_ms {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
    }

    /// Forgets `ip`'s failures (after a successful sign-in).
    pub fn succeed(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
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
            assert_eq!(l.blocked(ip, t), None);
            l.fail(ip, t);
        }
        assert_eq!(l.blocked(ip, 10), Some(1));
        assert_eq!(l.blocked(other, 10), None);
        assert_eq!(l.blocked(ip, 1000), None);
        l.fail(ip, 1001);
        assert_eq!(l.blocked(ip, 1002), None, "a new window");
        l.succeed(ip);
        assert_eq!(l.blocked(ip, 1003), None);
    }
}
