//! How long a task waited for a worker, from the events' own timestamps: `task-started`
//! minus `task-sent` when the client sends `task-sent` events (the whole wait, in the broker
//! and in the worker's prefetch buffer, across the client's and the worker's clocks), else
//! minus `task-received` (one clock, only the wait inside the worker). Tasks with an
//! `eta`/`countdown` wait on purpose and are left out; each retry is a run of its own.
//!
//! The client publishes `task-sent` after the task itself, on another connection, so it can
//! arrive after the worker's `task-started`. Once any `task-sent` was seen on the broker, a
//! start without one is held until the `task-sent` comes (then counted from it) or the run
//! ends (then counted from `task-received`).

use super::event::Event;
use super::pending::{Pending, Task};

/// One wait to count.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// The task name (unbounded: the caller caps the label set).
    pub name: String,
    /// The queue its `task-sent` named, if one was seen.
    pub queue: Option<String>,
    /// Seconds, 0 when clock skew between client and worker makes it negative.
    pub seconds: f64,
}

/// Whether the broker's clients send `task-sent` events (they do for all tasks or none).
#[derive(Debug, Default)]
pub struct WaitTracker {
    sent_seen: bool,
}

impl WaitTracker {
    /// Notes what `e` (an event of task `uuid`) says about its wait; returns a finished wait.
    pub fn on_event(&mut self, pending: &mut Pending, uuid: &str, e: &Event) -> Option<Wait> {
        if uuid.is_empty() {
            return None;
        }
        match e.kind.as_str() {
            "task-sent" => {
                self.sent_seen = true;
                sent(pending.entry(uuid, e.name.as_deref()?), e)
            }
            "task-received" => {
                received(pending.entry(uuid, e.name.as_deref()?), e);
                None
            }
            "task-started" => {
                let task = pending.get_mut(uuid)?;
                let started = e.timestamp?;
                if task.since_sent || !self.sent_seen {
                    let since = task.wait_since.take()?;
                    return Some(wait(task, started - since));
                }
                if task.wait_since.is_some() {
                    task.started_at = Some(started);
                }
                None
            }
            "task-succeeded" | "task-failed" | "task-retried" | "task-rejected" | "task-revoked" => {
                // The run ended and its task-sent never came: count from task-received.
                let task = pending.get_mut(uuid)?;
                let started = task.started_at.take()?;
                let since = task.wait_since.take()?;
                Some(wait(task, started - since))
            }
            _ => None,
        }
    }
}

/// `task-sent`: the wait starts (a retry is sent again under its id, and starts anew), or,
/// when the worker already started the run, it is counted now.
fn sent(task: &mut Task, e: &Event) -> Option<Wait> {
    task.queue = e.queue.clone();
    task.since_sent = true;
    if let Some(started) = task.started_at.take() {
        task.wait_since = None;
        if e.scheduled {
            return None;
        }
        return Some(wait(task, started - e.timestamp?));
    }
    task.wait_since = if e.scheduled { None } else { e.timestamp };
    None
}

/// `task-received`: the wait starts here unless `task-sent` already started it.
fn received(task: &mut Task, e: &Event) {
    if e.scheduled {
        task.wait_since = None;
    } else if task.wait_since.is_none() {
        task.wait_since = e.timestamp;
        task.since_sent = false;
    }
}

fn wait(task: &Task, seconds: f64) -> Wait {
    Wait {
        name: task.name.clone(),
        queue: task.queue.clone(),
        seconds: seconds.max(0.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(kind: &str, name: Option<&str>, ts: f64) -> Event {
        Event {
            kind: kind.into(),
            uuid: Some("u".into()),
            name: name.map(str::to_string),
            timestamp: Some(ts),
            queue: (kind == "task-sent").then(|| "mail".to_string()),
            ..Event::default()
        }
    }

    fn run(events: &[Event]) -> Vec<Wait> {
        let (mut tracker, mut pending) = (WaitTracker::default(), Pending::default());
        let mut out = Vec::new();
        for e in events {
            out.extend(tracker.on_event(&mut pending, "u", e));
        }
        out
    }

    #[test]
    fn from_sent_when_it_comes_first_or_last() {
        let in_order = run(&[
            ev("task-sent", Some("t"), 100.0),
            ev("task-received", Some("t"), 130.0),
            ev("task-started", None, 160.0),
            ev("task-succeeded", None, 161.0),
        ]);
        let expected = Wait {
            name: "t".into(),
            queue: Some("mail".into()),
            seconds: 60.0,
        };
        assert_eq!(in_order, vec![expected.clone()]);
        // After a first task-sent on the broker, a start waits for its own task-sent.
        let mut tracker = WaitTracker::default();
        let mut pending = Pending::default();
        assert!(tracker
            .on_event(&mut pending, "x", &ev("task-sent", Some("x"), 0.0))
            .is_none());
        let mut got = Vec::new();
        for e in [
            ev("task-received", Some("t"), 130.0),
            ev("task-started", None, 160.0),
            ev("task-sent", Some("t"), 100.0),
            ev("task-succeeded", None, 161.0),
        ] {
            got.extend(tracker.on_event(&mut pending, "u", &e));
        }
        assert_eq!(got, vec![expected]);
    }

    #[test]
    fn from_received_without_sent_events_or_when_sent_never_comes() {
        let plain = run(&[
            ev("task-received", Some("t"), 10.0),
            ev("task-started", None, 12.5),
        ]);
        assert_eq!(plain.len(), 1);
        assert_eq!((plain[0].seconds, plain[0].queue.clone()), (2.5, None));
        let (mut tracker, mut pending) = (WaitTracker::default(), Pending::default());
        tracker.on_event(&mut pending, "x", &ev("task-sent", Some("x"), 0.0));
        let mut got = Vec::new();
        for e in [
            ev("task-received", Some("t"), 10.0),
            ev("task-started", None, 12.0),
            ev("task-failed", None, 13.0),
        ] {
            got.extend(tracker.on_event(&mut pending, "u", &e));
        }
        assert_eq!(got.len(), 1, "counted at the end of the run");
        assert_eq!((got[0].seconds, got[0].queue.clone()), (2.0, None));
    }

    #[test]
    fn scheduled_runs_are_left_out_and_skew_reads_zero() {
        let mut later = ev("task-received", Some("t"), 10.0);
        later.scheduled = true;
        assert!(run(&[later, ev("task-started", None, 70.0)]).is_empty());
        let skewed = run(&[ev("task-sent", Some("t"), 50.0), ev("task-started", None, 49.0)]);
        assert_eq!(skewed[0].seconds, 0.0);
    }
}
