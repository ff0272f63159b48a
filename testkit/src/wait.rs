//! Waiting for a condition instead of sleeping and hoping: poll until it holds, and fail
//! only when a generous deadline passes (a real hang), saying what was awaited and how
//! things stood at the end.

use std::time::{Duration, Instant};

/// How long to wait for something that normally takes milliseconds before calling it a
/// hang: long enough for a loaded 2-core machine running other builds.
pub const HANG: Duration = Duration::from_secs(60);

/// How often to look again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `ready` until it returns `Ok`, and returns that value. `Err` carries how things
/// stand now; after `within` the test panics with `what` and the last such state.
pub fn until<T>(what: &str, within: Duration, mut ready: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match ready() {
            Ok(v) => return v,
            Err(state) => assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; last state: {state}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

/// [`until`] for async tests: the condition is async and the pause a tokio sleep, so the
/// runtime keeps serving whatever the test talks to in the meantime.
pub async fn until_async<T, F, Fut>(what: &str, within: Duration, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match ready().await {
            Ok(v) => return v,
            Err(state) => assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; last state: {state}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
