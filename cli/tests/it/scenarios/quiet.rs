//! Quiet: the idle stack (idle databases incl. templates, idle Redis polled by the agent, an
//! idle Celery worker, a fresh install) for 10 scaled minutes → nothing fires but `Watchdog`,
//! and nothing is notified (`Watchdog` goes to its own receiver).

use std::time::{Duration, Instant};

use super::stack::{names, Row, Stack, AMBIENT, TIME_SCALE};

pub fn run(stack: &Stack) -> Row {
    let window = Duration::from_secs_f64(600.0 * TIME_SCALE);
    let since = stack.delivered().len();
    let start = Instant::now();
    let mut pending_seen = std::collections::BTreeSet::new();
    let mut ambient = std::collections::BTreeSet::new();
    while start.elapsed() < window {
        let firing = stack.firing_names();
        for name in &firing {
            assert_eq!(name, "Watchdog", "the idle stack fired {firing:?}");
        }
        for a in stack.ambient_firing() {
            ambient.insert(a);
        }
        for p in names(&stack.alerts("pending")) {
            pending_seen.insert(p);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let firing = stack.firing_names();
    assert_eq!(
        firing.into_iter().collect::<Vec<_>>(),
        vec!["Watchdog".to_string()],
        "Watchdog fires from the start"
    );
    let unexpected = stack.unexpected_since(since, &[]);
    assert!(unexpected.is_empty(), "notified while idle: {unexpected:?}");
    let mut mails = stack.mail_subjects();
    mails.retain(|s| !AMBIENT.iter().any(|a| s.contains(a)));
    assert!(mails.is_empty(), "mailed while idle: {mails:?}");
    let pending = if pending_seen.is_empty() {
        String::new()
    } else {
        format!("; pending at some point: {pending_seen:?}")
    };
    let ambient = if ambient.is_empty() {
        String::new()
    } else {
        format!("; ambient (the machine itself): {ambient:?}")
    };
    Row {
        scenario: "quiet: idle stack, 10 min scaled",
        expected: "Watchdog only".to_string(),
        fired: format!("Watchdog only over {window:?}{pending}{ambient}"),
        verdict: "ok",
    }
}
