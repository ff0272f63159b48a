//! Quiet: the idle stack (idle databases incl. templates, idle Redis polled by the agent, an
//! idle Celery worker, the HTTP app under normal traffic with 0.2% errors, a fresh install)
//! for 10 scaled minutes, with one 30-second CPU spike on every core → nothing fires but
//! `Watchdog`, and nothing is notified (`Watchdog` goes to its own receiver). A
//! `HostHighCpu` the spike caused fails ([`judge_spike`], at the end of the suite, when the
//! spike has had its `for`); one the machine's own load explains is ambient.

use std::time::{Duration, Instant};

use super::cpu::{self, Spike};
use super::stack::{names, Row, Stack, AMBIENT, TIME_SCALE};

/// When the spike starts, into the quiet run.
const SPIKE_AFTER: Duration = Duration::from_secs(25);

pub fn run(stack: &Stack) -> (Row, Spike) {
    let window = Duration::from_secs_f64(600.0 * TIME_SCALE);
    let since = stack.delivered().len();
    let start = Instant::now();
    let mut pending_seen = std::collections::BTreeSet::new();
    let mut ambient = std::collections::BTreeSet::new();
    let mut burner = None;
    while start.elapsed() < window {
        if burner.is_none() && start.elapsed() >= SPIKE_AFTER {
            burner = Some(std::thread::spawn(cpu::spike));
        }
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
    let spike = burner
        .expect("the quiet run outlasts SPIKE_AFTER")
        .join()
        .expect("the spike's threads do not panic");
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
    let (sent, failed) = stack.traffic.counts();
    let row = Row {
        scenario: "quiet: idle stack, HTTP app at 0.2% errors, 30 s CPU spike, 10 min scaled",
        expected: "Watchdog only".to_string(),
        fired: format!("Watchdog only over {window:?} ({sent} requests, {failed} failed){pending}{ambient}"),
        verdict: "ok",
    };
    (row, spike)
}

/// Every `HostHighCpu` delivered while the spike was in the rule's window must be one the
/// rule would have fired without the spike ([`cpu::Idle::judge`]). Called at the end of
/// the suite, when the spike has been in the window for longer than the scaled `for`.
pub fn judge_spike(stack: &Stack, spike: Spike) -> Row {
    let mut verdicts = Vec::new();
    for d in stack.delivered() {
        let in_window = d.at >= spike.start && d.at <= spike.end + cpu::WINDOW;
        if d.name != "HostHighCpu" || d.status != "firing" || !in_window {
            continue;
        }
        match stack.idle.judge(stack.server_ready, spike, d.at) {
            Ok(why) => verdicts.push(format!(
                "fired {:.0?} after the spike's start, machine busy without it: {why}",
                d.at - spike.start
            )),
            Err(why) => panic!("the 30 s CPU spike made HostHighCpu fire: {why}"),
        }
    }
    let watched = spike.start.elapsed().min(spike.end - spike.start + cpu::WINDOW);
    let busy = 1.0 - stack.idle.between(spike.end, Instant::now()) / spike.end.elapsed().as_secs_f64();
    let fired = if verdicts.is_empty() {
        format!(
            "HostHighCpu not fired in the {watched:.0?} after the spike's start (host {:.0}% busy since)",
            busy * 100.0
        )
    } else {
        verdicts.join("; ")
    };
    Row {
        scenario: "30 s CPU spike on every core (during the quiet run)",
        expected: "no HostHighCpu caused by it".to_string(),
        fired,
        verdict: "ok",
    }
}
