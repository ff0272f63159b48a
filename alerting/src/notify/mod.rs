//! The notification pipeline: alerts from the rule engine are routed, grouped, silenced,
//! inhibited, deduplicated against the notification log and sent to receivers.

mod alert;

pub use alert::{Alert, AlertSink};
