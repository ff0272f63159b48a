//! The tasks between their first event and their end, remembered by id: the task name (only
//! `task-sent` and `task-received` carry it), the queue (only `task-sent` does) and when the
//! task began to wait for a worker. At most [`MAX_PENDING_TASKS`]; the oldest are forgotten
//! first.

use std::collections::{HashMap, VecDeque};

/// Most task ids remembered between `task-received` (which names the task) and the event
/// that ends it; the oldest are forgotten first (their end counts as `name="unknown"`).
pub const MAX_PENDING_TASKS: usize = 20_000;

/// What is known of one task on its way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    /// The task name.
    pub name: String,
    /// The queue of its `task-sent`, if one was seen.
    pub queue: Option<String>,
    /// Since when it waits (sender's clock, seconds), until `task-started` takes it.
    pub wait_since: Option<f64>,
    /// Whether `wait_since` is the `task-sent` time (else the `task-received` time).
    pub since_sent: bool,
    /// When the run started, while its wait waits for a late `task-sent`.
    pub started_at: Option<f64>,
}

/// Task ids → [`Task`], bounded.
#[derive(Debug, Default)]
pub struct Pending {
    tasks: HashMap<String, (Task, u64)>,
    /// Ids in insertion order; entries whose number no longer matches are dead and skipped.
    order: VecDeque<(String, u64)>,
    seq: u64,
}

impl Pending {
    /// Tasks remembered now.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is remembered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The task `uuid`, if remembered.
    pub fn get(&self, uuid: &str) -> Option<&Task> {
        self.tasks.get(uuid).map(|(t, _)| t)
    }

    /// The task `uuid` to update, remembered as `name` first if it was not (forgetting the
    /// oldest to stay within [`MAX_PENDING_TASKS`]).
    pub fn entry(&mut self, uuid: &str, name: &str) -> &mut Task {
        if !self.tasks.contains_key(uuid) {
            self.make_room();
            self.seq += 1;
            self.order.push_back((uuid.to_string(), self.seq));
        }
        let seq = self.seq;
        let (task, _) = self.tasks.entry(uuid.to_string()).or_insert_with(|| {
            let task = Task {
                name: name.to_string(),
                ..Task::default()
            };
            (task, seq)
        });
        task
    }

    /// The task `uuid` to update, if remembered.
    pub fn get_mut(&mut self, uuid: &str) -> Option<&mut Task> {
        self.tasks.get_mut(uuid).map(|(t, _)| t)
    }

    /// Forgets task `uuid` (it ended); its order entry is skipped later.
    pub fn remove(&mut self, uuid: &str) {
        self.tasks.remove(uuid);
    }

    /// Forgets the oldest tasks until one more fits; dead order entries are dropped in
    /// O(1) amortised time.
    fn make_room(&mut self) {
        while self.tasks.len() >= MAX_PENDING_TASKS {
            let Some((old, old_seq)) = self.order.pop_front() else {
                break;
            };
            if self.tasks.get(&old).map(|p| p.1) == Some(old_seq) {
                self.tasks.remove(&old);
            }
        }
        if self.order.len() > 4 * MAX_PENDING_TASKS {
            let tasks = &self.tasks;
            self.order.retain(|(u, s)| tasks.get(u).map(|p| p.1) == Some(*s));
        }
    }

    #[cfg(test)]
    fn order_len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remembered_tasks_stay_bounded_and_the_newest_are_kept() {
        let mut p = Pending::default();
        for i in 0..(5 * MAX_PENDING_TASKS) {
            let id = i.to_string();
            p.entry(&id, "t").wait_since = Some(1.0);
            if i % 2 == 0 {
                p.remove(&id);
            }
        }
        assert!(p.len() <= MAX_PENDING_TASKS);
        assert!(p.order_len() <= 4 * MAX_PENDING_TASKS + 1);
        let last = (5 * MAX_PENDING_TASKS - 1).to_string();
        assert_eq!(p.get(&last).unwrap().name, "t");
        assert!(p.get("1").is_none(), "the oldest was forgotten");
    }

    #[test]
    fn an_entry_keeps_its_first_name() {
        let mut p = Pending::default();
        p.entry("u", "a").queue = Some("q".into());
        assert_eq!(p.entry("u", "b").name, "a");
        assert_eq!(p.get("u").unwrap().queue.as_deref(), Some("q"));
        p.remove("u");
        assert!(p.is_empty());
    }
}
