//! Celery queue lengths read the way kombu stores them on Redis, without moving the figures
//! the agent reports: one `SCAN` (MATCH on kombu's `global_keyprefix`) lists the keys that
//! exist, and only those are read (`SMEMBERS` of the binding sets, `LLEN` of the queue
//! lists, `HLEN` of `unacked`). An absent key is never looked up, so polling adds no
//! `keyspace_misses` (an `LLEN` of an absent priority list counts one miss each time).
//!
//! kombu's layout: a queue's priority-0 messages are in the list named like the queue, the
//! other priority steps in `<queue><sep><step>` (`sep` is `\x06\x16` unless changed); the
//! queues bound to an exchange are the members `<routing key><sep><pattern><sep><queue>` of
//! the set `_kombu.binding.<exchange>`; every key is behind `global_keyprefix`.

use std::collections::{BTreeMap, BTreeSet};

/// kombu's default separator between a queue name and its priority step (and between the
/// parts of a binding).
pub const KOMBU_PRIORITY_SEP: &str = "\x06\x16";

/// kombu's prefix of the binding set of an exchange.
const BINDING_PREFIX: &str = "_kombu.binding.";

/// At most this many queues are reported per server, so a runaway of reply queues cannot
/// flood the store; the rest are counted in the warning.
pub const MAX_QUEUES: usize = 500;

/// `pattern` escaped for `SCAN … MATCH` (glob metacharacters taken literally).
pub fn glob_escape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What one `SCAN` found under kombu's prefix (names without the prefix).
#[derive(Debug, Default, PartialEq)]
pub struct KombuKeys {
    /// Exchanges that have a binding set (`_kombu.binding.<exchange>`).
    pub binding_exchanges: Vec<String>,
    /// Every other key: candidate queue lists.
    pub others: BTreeSet<String>,
    /// Whether kombu's `unacked` hash exists.
    pub unacked: bool,
}

/// Sorts the scanned `keys` (full names) into binding sets, `unacked` and the rest; keys
/// outside `prefix` are ignored.
pub fn classify(keys: &[String], prefix: &str) -> KombuKeys {
    let mut out = KombuKeys::default();
    for key in keys {
        let Some(name) = key.strip_prefix(prefix) else {
            continue;
        };
        if let Some(exchange) = name.strip_prefix(BINDING_PREFIX) {
            out.binding_exchanges.push(exchange.to_string());
        } else if name == "unacked" {
            out.unacked = true;
        } else {
            out.others.insert(name.to_string());
        }
    }
    out.binding_exchanges.sort();
    out.binding_exchanges.dedup();
    out
}

/// Whether the queues bound to `exchange` are Celery work queues: not the event exchange
/// (fanout over pub/sub, no lists) and not the remote-control `*.pidbox` exchanges (one
/// short-lived reply queue per `celery inspect` call).
pub fn is_work_exchange(exchange: &str, event_exchange: &str) -> bool {
    exchange != event_exchange && !exchange.ends_with(".pidbox")
}

/// The queue of a binding set member `<routing key><sep><pattern><sep><queue>`.
pub fn binding_queue<'a>(member: &'a str, sep: &str) -> Option<&'a str> {
    let mut parts = member.splitn(3, sep);
    let _routing_key = parts.next()?;
    let _pattern = parts.next()?;
    parts.next().filter(|q| !q.is_empty())
}

/// The (queue, priority step) a list key of `queues` stands for, if it is one: the bare
/// name is step 0, `<queue><sep><digits>` the step.
pub fn queue_key_of<'a>(key: &'a str, sep: &str, queues: &BTreeSet<String>) -> Option<(&'a str, u32)> {
    if queues.contains(key) {
        return Some((key, 0));
    }
    let (queue, step) = key.rsplit_once(sep)?;
    if step.is_empty() || !step.chars().all(|c| c.is_ascii_digit()) || !queues.contains(queue) {
        return None;
    }
    step.parse().ok().map(|s| (queue, s))
}

/// Lengths per (queue, priority step): every configured step of every queue is present
/// (0 when its list does not exist), plus any other step found.
pub fn lengths_by_priority(
    queues: &BTreeSet<String>,
    steps: &[u32],
    found: &[(String, u32, i64)],
) -> BTreeMap<(String, u32), i64> {
    let mut out = BTreeMap::new();
    for queue in queues {
        out.insert((queue.clone(), 0), 0);
        for step in steps {
            out.insert((queue.clone(), *step), 0);
        }
    }
    for (queue, step, len) in found {
        *out.entry((queue.clone(), *step)).or_insert(0) += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_into_bindings_queues_and_unacked() {
        let keys: Vec<String> = [
            "app:_kombu.binding.celery",
            "app:_kombu.binding.celeryev",
            "app:unacked",
            "app:celery",
            "app:celery\x06\x169",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let k = classify(&keys, "app:");
        assert_eq!(k.binding_exchanges, vec!["celery", "celeryev"]);
        assert!(k.unacked);
        assert_eq!(k.others.len(), 2);
        assert!(is_work_exchange("celery", "celeryev"));
        assert!(!is_work_exchange("celeryev", "celeryev"));
        assert!(!is_work_exchange("reply.celery.pidbox", "celeryev"));
    }

    #[test]
    fn bindings_and_priority_keys_are_parsed() {
        assert_eq!(
            binding_queue("celery\x06\x16\x06\x16celery", KOMBU_PRIORITY_SEP),
            Some("celery")
        );
        assert_eq!(binding_queue("rk|p|q", "|"), Some("q"));
        assert_eq!(binding_queue("broken", KOMBU_PRIORITY_SEP), None);
        let queues: BTreeSet<String> = ["celery".to_string(), "a:b".to_string()].into();
        assert_eq!(
            queue_key_of("celery", KOMBU_PRIORITY_SEP, &queues),
            Some(("celery", 0))
        );
        assert_eq!(
            queue_key_of("celery\x06\x166", KOMBU_PRIORITY_SEP, &queues),
            Some(("celery", 6))
        );
        assert_eq!(queue_key_of("a:b:3", ":", &queues), Some(("a:b", 3)));
        assert_eq!(queue_key_of("celery\x06\x16x", KOMBU_PRIORITY_SEP, &queues), None);
        assert_eq!(queue_key_of("emails", KOMBU_PRIORITY_SEP, &queues), None);
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn every_configured_step_is_reported() {
        let queues: BTreeSet<String> = ["q".to_string()].into();
        let l = lengths_by_priority(&queues, &[0, 3], &[("q".into(), 3, 2), ("q".into(), 7, 1)]);
        assert_eq!(l.get(&("q".to_string(), 0)), Some(&0));
        assert_eq!(l.get(&("q".to_string(), 3)), Some(&2));
        assert_eq!(l.get(&("q".to_string(), 7)), Some(&1));
    }
}
