//! Password hashing with Argon2id (the `argon2` crate's default parameters), stored as PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! Each verification takes 19 MiB of memory for its run, so at most
//! [`MAX_CONCURRENT_VERIFICATIONS`] run at once in the process: 64 concurrent wrong
//! passwords cost 4 × 19 MiB, not 64 × 19 MiB; the others wait for a slot (up to
//! [`VERIFY_WAIT`]) and are refused when none frees up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::AuthError;

/// Most Argon2 verifications (and hashes) running at once in the process.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

/// How long a verification waits for a free slot before it is refused.
pub const VERIFY_WAIT: Duration = Duration::from_secs(10);

/// A counting semaphore over the Argon2 runs, with the highest count ever reached.
struct Slots {
    in_use: Mutex<usize>,
    freed: Condvar,
    peak: AtomicUsize,
    /// Slots ever taken (Argon2 runs started).
    started: AtomicUsize,
}

static SLOTS: Slots = Slots {
    in_use: Mutex::new(0),
    freed: Condvar::new(),
    peak: AtomicUsize::new(0),
    started: AtomicUsize::new(0),
};

/// A held slot, given back on drop.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = SLOTS.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        drop(n);
        SLOTS.freed.notify_one();
    }
}

/// Takes a slot, waiting up to `wait`; `None` when none freed up in time.
fn acquire(wait: Duration) -> Option<Slot> {
    let deadline = Instant::now() + wait;
    let mut n = SLOTS.in_use.lock().unwrap_or_else(|e| e.into_inner());
    while *n >= MAX_CONCURRENT_VERIFICATIONS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        n = SLOTS
            .freed
            .wait_timeout(n, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    *n += 1;
    SLOTS.peak.fetch_max(*n, Ordering::Relaxed);
    SLOTS.started.fetch_add(1, Ordering::Relaxed);
    Some(Slot)
}

/// The most Argon2 runs that were ever in progress at once in this process (for
/// self-monitoring and tests; never above [`MAX_CONCURRENT_VERIFICATIONS`]).
pub fn peak_concurrent_verifications() -> usize {
    SLOTS.peak.load(Ordering::Relaxed)
}

/// How many Argon2 runs (verifications and hashes) this process has started (for
/// self-monitoring and tests: a refused sign-in attempt must not add to it).
pub fn verifications_started() -> usize {
    SLOTS.started.load(Ordering::Relaxed)
}

/// All Argon2 slots were busy for the whole wait: the caller should answer "try later"
/// (429) rather than "wrong password".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password verifications in progress; try again later")]
pub struct Busy;

/// Shortest password accepted for a new or reset password.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    let _slot = acquire(VERIFY_WAIT).ok_or_else(|| AuthError::Hash(Busy.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (false for a malformed string, and
/// when no verification slot freed up within [`VERIFY_WAIT`]).
pub fn verify(password: &str, stored: &str) -> bool {
    match verify_within(password, stored, VERIFY_WAIT) {
        Ok(ok) => ok,
        Err(Busy) => {
            tracing::warn!("password verification refused: all Argon2 slots busy");
            false
        }
    }
}

/// Like [`verify`], waiting at most `wait` for a slot and saying so when none freed up.
pub fn verify_within(password: &str, stored: &str, wait: Duration) -> Result<bool, Busy> {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Ok(false);
    };
    let _slot = acquire(wait).ok_or(Busy)?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash no password matches, verified against when the user does not exist so that an
/// unknown name takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PZ5NkpmxA3TVhIq9dYyG6VDxtXsUErd1vI1ZPL3hVvE"
}

/// Checks the rules for a new password; the message says what is wrong.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("the password must have at most 1024 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert_ne!(h, hash("correct horse").unwrap(), "salted");
        assert!(!verify("x", "not a phc string"));
        assert!(PasswordHash::new(decoy_hash()).is_ok());
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
    }

    /// The burst: 64 concurrent wrong passwords. At most
    /// `MAX_CONCURRENT_VERIFICATIONS` Argon2 runs are in progress at once (the peak counter
    /// is raised under the same lock that admits a run), and every one still gets its answer.
    #[test]
    fn concurrent_verifications_are_bounded() {
        let stored = hash("the right one").unwrap();
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let stored = stored.clone();
                std::thread::spawn(move || {
                    verify_within(&format!("wrong {i}"), &stored, Duration::from_secs(600))
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(false));
        }
        let peak = peak_concurrent_verifications();
        assert!(peak >= 1);
        assert!(peak <= MAX_CONCURRENT_VERIFICATIONS, "peak {peak}");
    }

    #[test]
    fn a_verification_without_a_free_slot_is_refused_as_busy() {
        let held: Vec<Slot> = (0..MAX_CONCURRENT_VERIFICATIONS)
            .map_while(|_| acquire(Duration::from_secs(600)))
            .collect();
        assert_eq!(held.len(), MAX_CONCURRENT_VERIFICATIONS);
        let stored = decoy_hash();
        assert_eq!(verify_within("x", stored, Duration::from_millis(10)), Err(Busy));
        drop(held);
        assert_eq!(verify_within("x", stored, Duration::from_secs(600)), Ok(false));
    }
}
